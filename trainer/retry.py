"""Riding out a storage host's faults: a failed stream or selection is retried with back-off,
within a bound, and past it the run ends in ``StorageGaveUp`` (the loop leaves a checkpoint,
``nessa train`` says how to continue with ``--resume``).

The client already retries UNAVAILABLE calls for a few seconds and resumes an interrupted
stream itself; this is the trainer's outer bound (``--storage-retries``, ``--retry-backoff``)
for what outlasts that: a server restarting, hung for a while (a stream's idle deadline or a
call's timeout: DEADLINE_EXCEEDED) or busy (RESOURCE_EXHAUSTED). A selection is retried as a
whole (push the model, select): a restarted server may have lost a running selection (NOT_FOUND)
and selecting again is cheap (selections are content-addressed, a finished one is found again).
Any other error (bad input, a selection that failed to compute) is not transient and is raised
at once.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable, TypeVar

import grpc

from storage_service.client import SelectionFailed, StorageError

__all__ = ["RetryPolicy", "StorageGaveUp", "TRANSIENT", "SELECTION_TRANSIENT", "retrying"]

T = TypeVar("T")

#: Codes worth another try: the server is away, hung, or busy.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED})
#: A selection also when a restarted server no longer knows it (or the model it needs).
SELECTION_TRANSIENT = TRANSIENT | {grpc.StatusCode.NOT_FOUND}


class StorageGaveUp(RuntimeError):
    """A stream or selection kept failing past the retry bound. ``error``: the last StorageError;
    ``checkpoint``: ``(path, epoch, step)`` of the checkpoint the loop left for ``--resume``, or
    None; ``checkpoint_path``: the run's checkpoint file if it has one."""

    def __init__(self, what: str, attempts: int, error: StorageError):
        super().__init__(f"{what} failed {attempts} time{'s' if attempts > 1 else ''} in a row "
                         f"(last: {error.code.name}: {error.details})")
        self.what, self.attempts, self.error = what, attempts, error
        self.checkpoint: tuple | None = None
        self.checkpoint_path = None


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more tries after a failure, waiting ``backoff`` s, doubling, at most ``max_backoff``."""

    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt)

    def should_retry(self, exc: BaseException, attempt: int, codes=TRANSIENT) -> bool:
        """Whether failure number ``attempt`` (0-based) of ``exc`` gets another try."""
        return (isinstance(exc, StorageError) and not isinstance(exc, SelectionFailed) and exc.code in codes
                and attempt < self.retries)

    def note(self, what: str, exc: StorageError, attempt: int) -> float:
        """Say on stderr that ``what`` is retried; returns the wait."""
        wait = self.delay(attempt)
        print(f"nessa train: {what} failed ({exc.code.name}: {exc.details}); retry {attempt + 1}/{self.retries} "
              f"in {wait:g} s", file=sys.stderr, flush=True)
        return wait

    def gave_up(self, what: str, exc: BaseException, attempt: int, codes=TRANSIENT) -> BaseException:
        """What to raise when ``exc`` gets no more tries: StorageGaveUp for a transient failure."""
        if isinstance(exc, StorageError) and not isinstance(exc, SelectionFailed) and exc.code in codes:
            return StorageGaveUp(what, attempt + 1, exc)
        return exc


def retrying(fn: Callable[[], T], policy: RetryPolicy, what: str, *, codes=SELECTION_TRANSIENT,
             stop: threading.Event | None = None) -> T:
    """``fn()``, tried again after a transient failure (``codes``) as ``policy`` allows; then
    ``StorageGaveUp``. ``stop`` set: give up waiting at once."""
    attempt = 0
    while True:
        try:
            return fn()
        except StorageError as exc:
            if not policy.should_retry(exc, attempt, codes) or (stop is not None and stop.is_set()):
                err = policy.gave_up(what, exc, attempt, codes)
                if err is exc:
                    raise
                raise err from exc
            wait = policy.note(what, exc, attempt)
            if stop is not None:
                stop.wait(wait)
            else:
                threading.Event().wait(wait)
            attempt += 1
