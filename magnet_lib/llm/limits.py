"""Limits shared by requests: a process-wide 429 cool-down per model, and adaptive concurrency.

**Cool-down.** When an endpoint answers 429, every request of the process to the same model
on the same endpoint (any runner, any thread, any event loop) waits until the ``Retry-After``
has passed before it is sent, instead of each of the other requests in flight discovering the
limit on its own with a 429 of its own. Without a ``Retry-After`` the pause is the first
backoff step. :func:`cooldown_for` hands out one :class:`CoolDown` per ``(endpoint, model)``.

**Adaptive concurrency** (:class:`AdaptiveLimiter`): the number of requests a client keeps in
flight starts at ``LLMSettings.concurrency`` (the ceiling) and follows AIMD: halved (at least
``min_concurrency``) on a 429 or a timeout, at most once per round trip (failures of requests
sent before the last cut do not cut again), and grown by one slot per window of successes
(``+1/limit`` per success) back up to the ceiling. A server that sheds load is given less of
it; a healthy one gets the full ceiling, so with no faults nothing changes.

Both are safe across threads and event loops (a waiter is woken on its own loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque


class CoolDown:
    """A moment before which no request to one model is sent."""

    def __init__(self) -> None:
        self.until = 0.0  # time.monotonic()
        self.pauses = 0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (a later moment already set stands)."""
        with self._lock:
            until = time.monotonic() + max(0.0, seconds)
            if until > self.until:
                self.until = until
                self.pauses += 1

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())

    async def wait(self) -> float:
        """Sleep out the cool-down (again if it was extended meanwhile); returns seconds waited."""
        waited = 0.0
        while True:
            left = self.until - time.monotonic()
            if left <= 0:
                return waited
            await asyncio.sleep(left)
            waited += left


_COOLDOWNS: dict[tuple[str, str], CoolDown] = {}
_COOLDOWNS_LOCK = threading.Lock()


def cooldown_for(endpoint: str | None, model: str) -> CoolDown:
    """The process-wide cool-down of ``model`` at ``endpoint`` (None = the provider's default)."""
    key = (endpoint or "", model)
    with _COOLDOWNS_LOCK:
        found = _COOLDOWNS.get(key)
        if found is None:
            found = _COOLDOWNS[key] = CoolDown()
        return found


class AdaptiveLimiter:
    """A semaphore whose size follows AIMD between ``minimum`` and ``maximum``.

    ``acquire()`` returns a ticket (the decrease epoch at the start); ``release(ticket, ok=...,
    overloaded=...)`` frees the slot and adapts: ``overloaded`` (a 429, a timeout) halves the
    limit unless a cut already happened after this request was sent, ``ok`` grows it by
    ``1/limit``. With ``adaptive=False`` it is a plain semaphore of ``maximum``."""

    def __init__(self, maximum: int, minimum: int = 1, adaptive: bool = True):
        self.maximum = max(1, int(maximum))
        self.minimum = max(1, min(int(minimum), self.maximum))
        self.adaptive = adaptive
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.max_in_flight = 0
        self.decreases = 0
        self._epoch = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()
        self._lock = threading.Lock()

    def _free(self) -> bool:
        return self.in_flight < max(self.minimum, int(self.limit))

    async def acquire(self) -> int:
        with self._lock:
            if not self._waiters and self._free():
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                return self._epoch
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future  # the slot is handed over already counted
        except asyncio.CancelledError:
            with self._lock:
                if future.done() and not future.cancelled():
                    self._release_locked()  # woken and cancelled at once: pass the slot on
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove((loop, future))
            raise
        return self._epoch

    def release(self, ticket: int, *, ok: bool = False, overloaded: bool = False) -> None:
        with self._lock:
            if self.adaptive:
                if overloaded:
                    if ticket == self._epoch and self.limit > self.minimum:
                        self.limit = max(float(self.minimum), float(int(self.limit) // 2))
                        self._epoch += 1
                        self.decreases += 1
                elif ok and self.limit < self.maximum:
                    self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._release_locked()

    def _release_locked(self) -> None:
        self.in_flight -= 1
        while self._waiters and self._free():
            loop, future = self._waiters.popleft()
            if future.done():
                continue
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if loop is _running_loop():
                future.set_result(None)
            else:
                try:
                    loop.call_soon_threadsafe(self._wake, future)
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    self.in_flight -= 1

    def _wake(self, future: asyncio.Future) -> None:
        """Hand a slot to a waiter of another loop, on its loop; one that was cancelled in the
        meantime has left the queue already, so the slot counted for it is freed again."""
        if not future.done():
            future.set_result(None)
        elif future.cancelled():
            with self._lock:
                self._release_locked()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
