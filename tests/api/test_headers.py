"""Security headers on every answer, and ``cartnet serve`` over TLS (issue 13, no. 11).

In process: API answers, portal pages and errors carry ``no-store``, ``nosniff`` and a
referrer policy; static files may be cached; HSTS only over HTTPS. A real server, started
with a self-signed certificate made here, answers over TLS with HSTS and no ``server``
banner.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from tests.api.conftest import PASSWORD, Api
from typer.testing import CliRunner

from cartnet.cli import app as cli

START = "import sys; from cartnet.cli import main; sys.argv[0] = 'cartnet'; main()"


def assert_private(response: Any) -> None:
    """The headers every answer that may carry identity or tokens must have."""
    headers = response.headers
    assert headers["cache-control"] == "no-store", (response.url, dict(headers))
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert "server" not in headers


def test_api_answers_pages_and_errors_are_not_cached(api: Api) -> None:
    client = api.client
    login = client.post("/api/v1/auth/tokens", json={"username": "qa", "password": PASSWORD})
    assert login.status_code == 201
    assert_private(login)
    order = api.enroll()
    patient = api.get("coordinator", f"/orders/{order['id']}/patient")
    assert patient.status_code == 200, patient.text
    assert_private(patient)
    for response in (
        api.get("coordinator", "/me"),
        api.get(None, "/me"),  # 401
        api.get("coordinator", "/orders/ord_nope"),  # 404
        client.put("/api/v1/orders"),  # 405
        client.post("/api/v1/orders", content=b"x" * 3_000_000),  # 413, from the body limit
        client.get("/healthz"),
        client.get("/login"),
        client.get("/openapi.json"),
    ):
        assert_private(response)
        assert "strict-transport-security" not in response.headers, "plain HTTP: no HSTS"
    page = client.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "content-security-policy" not in client.get("/docs").headers
    static = client.get("/static/api-docs/favicon.png")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("cache-control", "")
    assert static.headers["x-content-type-options"] == "nosniff"


def test_hsts_is_sent_over_https(api: Api) -> None:
    """RFC 6797: HSTS on secure transport only (uvicorn TLS, or a trusted proxy's https)."""
    secure = TestClient(api.client.app, base_url="https://testserver")
    for path in ("/healthz", "/login", "/api/v1/me"):
        response = secure.get(path)
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert response.headers["cache-control"] == "no-store"


# --- a real server over TLS ---------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cartnet test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_tls_answers_https_with_hsts_and_no_server_banner(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTNET_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    command = [
        sys.executable, "-c", START, "serve", "--port", str(port),
        "--db", f"sqlite+pysqlite:///{tmp_path / 'tls.db'}",
        "--tls-cert", str(cert), "--tls-key", str(key), "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    context = ssl.create_default_context(cafile=str(cert))
    try:
        response = None
        deadline = time.monotonic() + 60
        while response is None and time.monotonic() < deadline:
            assert server.poll() is None, server.communicate()[0]
            try:
                response = urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/healthz", context=context, timeout=2
                )
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert response is not None, "the server did not answer over TLS"
        with response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers.get("Server") is None, "no server banner"
            response.read()
        plain = f"http://127.0.0.1:{port}/healthz"
        try:
            urllib.request.urlopen(plain, timeout=2)
            raise AssertionError("plain HTTP was answered on the TLS port")
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise


def test_serve_needs_both_tls_files(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    result = CliRunner().invoke(cli, ["serve", "--tls-cert", str(cert)])
    assert result.exit_code != 0
    assert "--tls-cert and --tls-key go together" in result.output
