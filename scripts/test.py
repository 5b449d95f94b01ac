"""The whole test suite: lint, format check, type check and pytest, in ./.venv."""

from __future__ import annotations

import sys

from _venv import ensure_venv, run

if __name__ == "__main__":
    ensure_venv()
    run("ruff", "check", ".")
    run("ruff", "format", "--check", ".")
    run("mypy")
    run("lint-imports")  # the layers and the core's dependencies (pyproject.toml)
    given = sys.argv[1:]
    # the slowest tests are named at the end of every run, so a slow-down shows in CI's log
    durations = [] if any(a.startswith("--durations") for a in given) else ["--durations=15"]
    run("pytest", *durations, *given)
