"""Security headers on every answer of the process: the API, the portal, the files.

One middleware for both, so no answer is missed because it came from the other half:

- ``Cache-Control: no-store`` on everything but the static files: API answers carry
  tokens, identities and orders, pages carry the same, and neither belongs in a browser
  or proxy cache (OWASP REST Security Cheat Sheet, "Security headers").
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (ids in our URLs
  stay on our origin), ``X-Frame-Options: DENY``.
- ``Strict-Transport-Security`` when the request came over HTTPS (``cartnet serve
  --tls-cert``, or a reverse proxy uvicorn trusts to say so): RFC 6797 ignores the header
  over plain HTTP, and sending it there would only mislead.
- The portal's HTML gets a Content-Security-Policy that allows scripts and styles from
  our own origin only (no inline code, no ``eval``), so injected markup cannot run even
  where escaping failed. Swagger UI and ReDoc start from an inline script: they get none.

The ``server`` banner is uvicorn's, switched off where uvicorn is started (``server_header``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cartnet.web.portal import API_DOCS_PATHS

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
CACHEABLE = ("/static/",)
"""Paths whose answers hold no identity or token: the portal's scripts, styles, icons."""
HSTS = b"max-age=31536000"
"""One year, the value RFC 6797 section 11.2 and OWASP's HSTS cheat sheet use."""

ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Add the headers above to every HTTP answer, unless the answer set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(ALWAYS)
        path: str = scope.get("path", "")
        if not path.startswith(CACHEABLE):
            extra.append((b"cache-control", b"no-store"))
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                added = list(extra)
                if content_type.startswith(b"text/html") and path not in API_DOCS_PATHS:
                    added.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers += [(n, v) for n, v in added if n not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
