"""Limits on password checking: concurrent hashes per process, failures per account and
per client address.

argon2 is slow and memory-hard on purpose, so a login flood is a flood of work. Three
limits keep it from stalling the service (OWASP Authentication and Credential Stuffing
Prevention Cheat Sheets; NIST SP 800-63B 3.2.2, rate limiting):

- :class:`HashingSlots`: at most one check per core at once; a check past them is
  refused at once with 429 and ``Retry-After`` rather than queued (a queue of checks is
  a queue of memory and of waiting requests).
- per account (kept in the ``users`` row, so every process and the administrators see
  it): after ``login_backoff_after`` consecutive failures each try waits, doubling;
  after ``login_lockout_after`` the account is locked for ``login_lockout_minutes``,
  unless an administrator lifts it. A try during the wait is refused without checking
  the password.
- per client address (kept in memory, per process): the same back-off and lockout
  with the ``address_*`` thresholds, so one machine cannot try many accounts.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from cartnet.service.errors import TooManyRequests
from cartnet.service.settings import ServiceSettings

T = TypeVar("T")
_HELD: ContextVar[bool] = ContextVar("cartnet_hashing_slot_held", default=False)
ADDRESSES_KEPT = 10_000
"""Client addresses remembered per process; the least recently failed are forgotten."""


def backoff(failures: int, after: int, lockout_after: int, s: ServiceSettings) -> timedelta | None:
    """How long tries must wait after ``failures`` consecutive failures; None: no wait."""
    if failures >= lockout_after:
        return s.lockout
    if failures < after:
        return None
    wait = timedelta(seconds=s.login_backoff_seconds * 2 ** (failures - after))
    return min(wait, s.lockout)


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class HashingSlots:
    """At most one argon2 computation per core at once, each on a thread of its own pool.

    A check past the slots is refused at once (429). The computations run on the pool's
    few threads, not on the request threads: glibc keeps freed memory in the arena of
    the thread that used it, so 40 request threads hashing in turn would each keep their
    19 MiB (the 2.2 GiB growth of the review); two threads keep two. They run at a lower
    priority, so that the other requests keep their cores.
    """

    def __init__(self, slots: int | None) -> None:
        self.size = slots or os.cpu_count() or 1
        self._free = self.size
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=self.size, thread_name_prefix="argon2", initializer=_yield_the_cpu
        )

    def full(self) -> bool:
        """Whether a check now would be refused (a hint: :meth:`slot` decides)."""
        return self._free <= 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot; :class:`TooManyRequests` when all are busy. Within a slot already
        held (the API takes it for the whole login) this takes no second one."""
        if _HELD.get():
            yield
            return
        with self._lock:
            if self._free <= 0:
                raise TooManyRequests(BUSY, retry_after=1)
            self._free -= 1
        held = _HELD.set(True)
        try:
            yield
        finally:
            _HELD.reset(held)
            with self._lock:
                self._free += 1

    def run(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` on the hashing threads, within a slot."""
        with self.slot():
            return self._pool.submit(work, *args).result()


HASHING_NICENESS = 10
"""The hashing threads run at this nice value (Linux schedules threads one by one): a
core busy with argon2 gives way to requests that answer at once."""


def _yield_the_cpu() -> None:
    with suppress(AttributeError, OSError):  # not Linux, or not allowed: run as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


BUSY = "the server is checking as many passwords as it can at once; try again in a second"


@dataclass
class _Failures:
    count: int
    wait_until: datetime | None


class AddressThrottle:
    """Consecutive failed logins per client address, in memory, with back-off."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, address: str, now: datetime) -> None:
        """Refuse (429) while the address must wait."""
        with self._lock:
            found = self._seen.get(address)
        if found is not None and found.wait_until is not None and now < found.wait_until:
            raise TooManyRequests(
                f"too many failed logins from {address}; try again later",
                retry_after=seconds_until(found.wait_until, now),
            )

    def failed(self, address: str, now: datetime) -> None:
        s = self._settings
        with self._lock:
            found = self._seen.pop(address, None)
            if found is None or (
                found.wait_until is not None and now - found.wait_until > s.lockout
            ):
                found = _Failures(0, None)  # quiet for a lockout's length: start again
            found.count += 1
            wait = backoff(found.count, s.address_backoff_after, s.address_lockout_after, s)
            found.wait_until = None if wait is None else now + wait
            self._seen[address] = found
            while len(self._seen) > ADDRESSES_KEPT:
                self._seen.popitem(last=False)

    def failures(self, address: str) -> int:
        with self._lock:
            found = self._seen.get(address)
        return 0 if found is None else found.count


@dataclass
class LoginGuard:
    """The limits of one service context (one process)."""

    slots: HashingSlots
    addresses: AddressThrottle


_GUARD = "_cartnet_login_guard"
_GUARD_LOCK = threading.Lock()


def guard_of(ctx: object) -> LoginGuard:
    """The guard of a service context, made on first use (one per context)."""
    found = getattr(ctx, _GUARD, None)
    if isinstance(found, LoginGuard):
        return found
    with _GUARD_LOCK:
        found = getattr(ctx, _GUARD, None)
        if not isinstance(found, LoginGuard):
            settings: ServiceSettings = ctx.settings  # type: ignore[attr-defined]
            found = LoginGuard(HashingSlots(settings.hashing_slots), AddressThrottle(settings))
            setattr(ctx, _GUARD, found)
        return found
