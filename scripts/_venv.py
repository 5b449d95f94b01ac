"""Make sure ./.venv exists with cartnet and its development tools installed.

Shared by scripts/demo.py and scripts/test.py so that a fresh clone needs only
python3 (>= 3.11) and pip. Reinstalls when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".cartnet-installed"


def ensure_venv() -> Path:
    """The venv's bin folder, created and (re)installed when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs before cartnet is installed
        sys.exit(f"cartnet needs Python >= 3.11; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and (BIN / "cartnet").exists():
        return BIN
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing cartnet and its tools into .venv (first run only) ...", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)
    return BIN


def run(*args: str) -> None:
    """Run a command from the venv; stop with its exit code when it fails."""
    done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT)
    if done.returncode != 0:
        sys.exit(done.returncode)
