"""HiGHS, quiet: every solver instance cartnet makes comes from here.

HiGHS prints a banner to the process's standard output the first time a
``Highs`` object is built, which would corrupt ``--json`` output; the first
instance is built with file descriptor 1 pointed at /dev/null, and every
instance has its logging switched off.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import highspy

_lock = threading.Lock()
_banner_done = False


def new_highs(**options: Any) -> Any:
    """A silent ``highspy.Highs`` with the given options set."""
    global _banner_done
    with _lock:
        if not _banner_done:
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                with open(os.devnull, "w") as devnull:
                    os.dup2(devnull.fileno(), 1)
                    h = highspy.Highs()  # type: ignore[no-untyped-call]
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            _banner_done = True
        else:
            h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    for key, value in options.items():
        h.setOptionValue(key, value)
    return h
