"""Files a command writes: checked before the work, moved into place only when whole.

A command checks every output path (:func:`check_output`) before its expensive part,
so a mistyped path fails in a second, not after a long run. It then writes through
:func:`staged`: into a hidden folder next to the target, moved into place file by
file when the writing succeeded and removed otherwise, so an error or Ctrl-C leaves
neither a half-written file nor a few stray figures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cartnet.cli.common import fail

SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
"""Kernel interfaces that look like folders: writing a report there is never meant."""


def check_output(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` if a file can be written there; otherwise fail naming ``option``.

    A missing folder is fine when the nearest existing one is writable (it is made);
    an existing file is replaced.
    """
    shown = f"{option} {path}"
    if suffixes and path.suffix.lower() not in suffixes:
        kinds = (
            ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]
        )
        fail(f"{shown}: the file name must end in {kinds}")
    if not path.name or str(path).endswith(("/", os.sep)):
        fail(f"{shown}: give a file name, not a folder")
    absolute = Path(os.path.abspath(path))
    if any(str(absolute) == d or str(absolute).startswith(d + "/") for d in SYSTEM_FOLDERS):
        fail(f"{shown}: {absolute.parts[1]} holds system interfaces, not files; choose another")
    if absolute.is_dir():
        fail(f"{shown}: is a folder; give a file name inside it")
    if absolute.exists() and not absolute.is_file():
        fail(f"{shown}: exists and is not a regular file")
    folder = absolute.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        fail(f"{shown}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(f"{shown}: cannot write in {folder}")
    return path


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """A path to write ``path`` (and sibling files) to; moved into place on success."""
    target = Path(os.path.abspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield stage / target.name
        written = sorted(stage.iterdir(), key=lambda p: p.name == target.name)
        for file in written:  # the main file last: it points to the others
            os.replace(file, target.parent / file.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    with staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
