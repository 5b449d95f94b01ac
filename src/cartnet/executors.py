"""Where replications run: serially, in a pool of worker processes, or on a Dask cluster.

The twin takes any :class:`concurrent.futures.Executor`; this module makes one, and owns
the process hygiene around it (workers ignore Ctrl-C and die with their parent, an
interrupted run leaves no worker behind, an unreachable scheduler fails fast). It sits
outside the core packages so that the twin never imports Dask.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

SCHEDULER_TIMEOUT_S = 5.0
"""How long to wait for a Dask scheduler before giving up with a clear message."""


def _worker_start() -> None:
    """Set up a worker process: the parent alone answers Ctrl-C and SIGTERM.

    Ctrl-C reaches every process of the terminal's group; workers ignore it and the
    parent stops them (:func:`stop_workers`). On Linux a worker also asks the kernel
    for SIGTERM when its parent dies, so no worker outlives a killed parent.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() == 1:  # the parent died before the request was made
            os._exit(1)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Drop the batches not started and end the running ones at once."""
    # The pool forgets its processes on shutdown: take them first (3.14 has terminate_workers).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> None:
    """Fail fast, naming the address, when a Dask scheduler cannot be reached.

    Dask's own client retries for its whole timeout and may then raise a bare
    AssertionError; a plain TCP connection answers in milliseconds for a closed port
    and within ``timeout`` for a host that does not answer or does not resolve.
    """
    scheme, sep, rest = address.rpartition("://")
    if not sep:
        scheme, rest = "tcp", address
    host, colon, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if scheme not in ("tcp", "tls") or not colon or not host or not port_text.isdigit():
        raise RuntimeError(
            f"{address!r} is not a Dask scheduler address (use tcp://HOST:PORT, "
            "e.g. tcp://10.0.0.5:8786)"
        )
    port = int(port_text)
    if not 0 < port < 65536:
        raise RuntimeError(f"{address!r}: port {port} is outside 1-65535")
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    probe = threading.Thread(target=connect, daemon=True)  # name lookups can hang too
    probe.start()
    probe.join(timeout)
    if not outcome:
        raise RuntimeError(f"no Dask scheduler answered at {address} within {timeout:g} s")
    if outcome[0] is not None:
        reason = getattr(outcome[0], "strerror", None) or str(outcome[0]) or "unreachable"
        raise RuntimeError(f"cannot reach the Dask scheduler at {address}: {reason}")


@contextmanager
def executor_for(workers: int | None, scheduler: str | None) -> Iterator[Executor | None]:
    """A Dask executor for ``scheduler``, a process pool for ``workers`` > 1, or None (serial).

    However the block ends early (Ctrl-C, SIGTERM turned into an exception, a failed
    replication), no batch is left queued and no worker left running.
    """
    if scheduler:
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise RuntimeError("--scheduler needs Dask: pip install 'cartnet[dask]'") from e
        check_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, ValueError, AssertionError, TimeoutError) as e:
            raise RuntimeError(f"cannot use the Dask scheduler at {scheduler}: {e}") from e
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=count, initializer=_worker_start)
    try:
        yield pool
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)
