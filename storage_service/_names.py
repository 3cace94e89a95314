"""Names <-> wire enums, written once and derived from the registries in ``host``.

``host.strategies.Strategy`` and ``host.backends.Backend`` own the names; the protobuf enums
(``proto/nessa.proto``) follow the convention ``STRATEGY_<NAME>`` / ``BACKEND_<NAME>`` (upper
case, ``-`` as ``_``). Importing this module checks that every registered strategy and every
served backend has its enum value, so adding a strategy without its wire value fails at once.
Shared by the client and the server (imports no server module).
"""

from __future__ import annotations

from host.backends import SERVED_BACKENDS, Backend
from host.strategies import Strategy
from storage_service._proto import nessa_pb2 as pb

__all__ = ["STRATEGY_TO_PB", "PB_TO_STRATEGY", "BACKEND_TO_PB", "PB_TO_BACKEND", "backend_names", "FULL_SELECTION",
           "RANDOM_SELECTION"]

#: StreamSamples' built-in selections (no Select call needed): every sample, or a per-class
#: random sample of the request's fraction. Any other selection is a Select result's id.
FULL_SELECTION = Strategy.FULL.value
RANDOM_SELECTION = Strategy.RANDOM.value


def _enum_value(prefix: str, name: str) -> int:
    key = f"{prefix}_{name.upper().replace('-', '_')}"
    try:
        return pb.DESCRIPTOR.enum_types_by_name[prefix.title()].values_by_name[key].number
    except KeyError:
        raise RuntimeError(f"proto/nessa.proto has no {key}: add it (and regenerate the stubs)") from None


STRATEGY_TO_PB: dict[Strategy, int] = {s: _enum_value("STRATEGY", s.value) for s in Strategy}
PB_TO_STRATEGY: dict[int, Strategy] = {v: k for k, v in STRATEGY_TO_PB.items()}
BACKEND_TO_PB: dict[Backend, int] = {b: _enum_value("BACKEND", b.value) for b in SERVED_BACKENDS}
PB_TO_BACKEND: dict[int, Backend] = {v: k for k, v in BACKEND_TO_PB.items()}


def backend_names() -> list[str]:
    """The backends a storage service can be asked for, by name."""
    return [b.value for b in SERVED_BACKENDS]
