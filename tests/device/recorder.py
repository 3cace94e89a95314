"""Record the pyxrt calls the host makes, against any runtime (emulator, stand-in, real pyxrt).

``rec = Recorder(runtime)`` behaves like the runtime module; every constructor and method call
on it or on the objects it returns is appended to ``rec.calls`` as ``(api, args)`` where ``args``
is a summary that does not depend on the runtime (buffers by kind and size, ints by value,
enums by name). Comparing two recordings shows whether the host drove both the same way.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

__all__ = ["Recorder"]

_CLASSES = ("device", "xclbin", "kernel", "bo", "run", "uuid")


def _summary(v: Any) -> Any:
    if isinstance(v, _Proxy):
        return v._api
    if isinstance(v, enum.Enum) or type(v).__name__ in ("flags", "xclBOSyncDirection", "cu_access_mode"):
        return getattr(v, "name", str(v))
    if isinstance(v, (bool, int, np.integer)):
        return int(v)
    if isinstance(v, str):
        return "<str>"
    if isinstance(v, np.ndarray):
        return f"<ndarray {v.dtype} {v.nbytes}B>"
    if isinstance(v, memoryview):
        return f"<memoryview {v.nbytes}B>"
    return f"<{type(v).__name__}>"


class _Proxy:
    def __init__(self, rec: "Recorder", api: str, obj: Any):
        self._rec, self._api, self._obj = rec, api, obj

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr

        def call(*args: Any) -> Any:
            return self._rec._call(f"{self._api}.{name}", attr, args)

        return call

    def __call__(self, *args: Any) -> Any:
        return self._rec._call(f"{self._api}()", self._obj, args)


class _ClassProxy:
    """Stands for a runtime class: constructing logs a call, attributes (enums) pass through."""

    def __init__(self, rec: "Recorder", name: str, cls: Any):
        self._rec, self._name, self._cls = rec, name, cls

    def __call__(self, *args: Any) -> Any:
        return self._rec._call(self._name, self._cls, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cls, name)


class Recorder:
    def __init__(self, runtime: Any):
        self._rt = runtime
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rt, name)
        return _ClassProxy(self, name, attr) if name in _CLASSES else attr

    def _call(self, api: str, fn: Any, args: tuple[Any, ...]) -> Any:
        self.calls.append((api, tuple(_summary(a) for a in args)))
        raw = tuple(a._obj if isinstance(a, _Proxy) else a for a in args)
        out = fn(*raw)
        kind = next((c for c in _CLASSES if type(out).__name__ == c), None)
        return _Proxy(self, kind, out) if kind else out
