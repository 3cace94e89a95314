"""Idle deadlines for streams: a stream whose reader waits longer than ``idle_s`` for the next
message is cancelled, and the reader gets ``StreamIdle``.

Why a watchdog: a gRPC deadline covers a whole call, and an epoch's stream may rightly take
hours; neither gRPC-Python's response iterator nor gRPC C++'s blocking ``Read`` takes a
per-message timeout. So one daemon thread per process watches every open stream: the reader
notes when it starts waiting and when a message arrives (two stores per message), and the
thread sleeps until the earliest moment a wait could pass its limit, then cancels that call
(``cancel()`` is thread-safe in gRPC-Python and in ``_native_channel``). Time the caller spends
between messages (a training step) does not count: flow control holds the server back then, so
silence is no fault of the server's. Client side: imports nothing of the server.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable, Iterator, Protocol, TypeVar

__all__ = ["StreamIdle", "watched", "check_idle_timeout"]

T = TypeVar("T")


class StreamIdle(Exception):
    """The stream received nothing for ``idle_s`` seconds while its reader waited (it was cancelled)."""

    def __init__(self, idle_s: float, what: str):
        super().__init__(f"{what}: no message for {idle_s:g} s (stream_idle_timeout); the server is hung or unreachable")
        self.idle_s = idle_s


class _Call(Protocol[T]):
    def __next__(self) -> T: ...
    def cancel(self) -> object: ...


def check_idle_timeout(value: float | None, option: str = "stream_idle_timeout") -> float | None:
    """``value`` as a float (None: no idle deadline); ValueError naming ``option`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} must be a positive number of seconds (or None for none), got {value!r}")
    return float(value)


class _Watch:
    __slots__ = ("cancel", "idle_s", "since", "expired")

    def __init__(self, cancel: Callable[[], object], idle_s: float):
        self.cancel = cancel
        self.idle_s = idle_s
        self.since: float | None = None  # when the reader started waiting; None: not waiting
        self.expired = False


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[_Watch] = set()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._cond:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="nessa-stream-idle", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, watch: _Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            expired = []
            with self._cond:
                now = time.monotonic()
                wake = math.inf
                for w in list(self._watches):
                    since = w.since  # the reader's thread writes it without the lock: one atomic load
                    if since is not None and since + w.idle_s <= now:
                        w.expired = True
                        self._watches.discard(w)
                        expired.append(w)
                    else:  # a reader not waiting now waits idle_s at the soonest from now
                        wake = min(wake, (since if since is not None else now) + w.idle_s)
                if not expired:
                    self._cond.wait(None if wake == math.inf else max(wake - now, 0.001))
            for w in expired:  # outside the lock: cancel takes gRPC's locks
                try:
                    w.cancel()
                except Exception:  # noqa: BLE001 - a call that already ended
                    pass


_DOG = _Watchdog()


def watched(call: _Call[T], idle_s: float | None, what: str) -> Iterator[T]:
    """Yield ``call``'s messages; if one takes longer than ``idle_s`` to arrive, cancel ``call``
    and raise ``StreamIdle`` (``what`` names the stream in its message). ``idle_s`` None: no limit."""
    if idle_s is None:
        yield from call
        return
    watch = _Watch(call.cancel, idle_s)
    _DOG.add(watch)
    try:
        while True:
            watch.since = time.monotonic()
            try:
                item = next(call)
            except StopIteration:
                if watch.expired:
                    raise StreamIdle(idle_s, what) from None
                return
            except Exception:
                if watch.expired:  # the failure is our cancel's
                    raise StreamIdle(idle_s, what) from None
                raise
            finally:
                watch.since = None
            yield item
    finally:
        _DOG.remove(watch)
