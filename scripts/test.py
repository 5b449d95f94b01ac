"""The whole test suite: lint, format check, type check and pytest, in ./.venv."""

from __future__ import annotations

import sys

from _venv import ensure_venv, run

if __name__ == "__main__":
    ensure_venv()
    run("ruff", "check", ".")
    run("ruff", "format", "--check", ".")
    run("mypy")
    run("pytest", *sys.argv[1:])
