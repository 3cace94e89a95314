"""Scenario files for ``nessa simulate --config FILE`` (JSON, or TOML through tomllib).

Schema (version 1; every key optional except where noted)::

    {
      "version": 1,
      "name": "my-cluster",            # required unless "base" is given
      "base": "imagenet-8",            # start from a named scenario, then override
      "description": "...",
      "engine": "fpga" | "cpu",
      "drive_counts": [1, 2, 4, 8],    # the sweep plotted and tabulated
      "drives_per_host": 8,
      "dataset":   {"num_samples": 1281167, "sample_bytes": 150528, ...},
      "storage":   {"p2p_bw": 2.36e9, ...},
      "fpga":      {"clock_hz": 2e8, ...},
      "trainer":   {"gpus": 8, ...},
      "selection": {"fraction": 0.1, "reselect_every": 20, "optimizer": "stochastic", ...},
      "cpu":       {"select_ops": 2e9, ...}
    }

Section fields are the dataclass fields of :mod:`sim.perf.params` (``nessa simulate
--sources`` lists them with units). ``storage.storage_hosts`` applies at ``storage.drives``;
the other points of the sweep get ``ceil(drives / drives_per_host)`` storage hosts. An unknown key, a wrong type or an out-of-range value
raises :class:`ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from pathlib import Path
from typing import Any

from .params import Cpu, Dataset, Engine, Fpga, Scenario, Selection, Storage, Trainer
from .scenarios import get_scenario

__all__ = ["ConfigError", "load_config", "scenario_from_dict", "CONFIG_VERSION"]

CONFIG_VERSION = 1
_SECTIONS = {"dataset": Dataset, "storage": Storage, "fpga": Fpga, "trainer": Trainer, "selection": Selection, "cpu": Cpu}
_TOP = {"version", "name", "base", "description", "engine", "drive_counts", "drives_per_host", *_SECTIONS}


class ConfigError(ValueError):
    """A scenario file that cannot be simulated; the message names the offending key."""


def load_config(path: str | Path) -> Scenario:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    text = p.read_bytes()
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10: the standard library has no TOML reader
                raise ConfigError(f"{p.name}: TOML configs need Python >= 3.11; write it as JSON") from None
            data = tomllib.loads(text.decode("utf-8"))
        else:
            data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"{p.name}: not valid {'TOML' if p.suffix.lower() == '.toml' else 'JSON'}: {exc}") from None
    return scenario_from_dict(data, origin=p.name)


def _coerce(key: str, t: Any, value: Any) -> Any:
    if isinstance(t, type) and issubclass(t, enum.Enum):
        try:
            return t(value)
        except ValueError:
            known = ", ".join(repr(m.value) for m in t)
            raise ConfigError(f"{key}: {value!r} is not one of {known}") from None
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if t is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {t!r}")  # pragma: no cover - schema bug


def _section(name: str, cls: type, base: Any, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{name} must be a table/object of fields, got {type(values).__name__}")
    fields = typing.get_type_hints(cls)
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown field {name}.{key} (known: {', '.join(sorted(fields))})")
        changes[key] = _coerce(f"{name}.{key}", fields[key], value)
    return dataclasses.replace(base, **changes)


def scenario_from_dict(data: Any, origin: str = "config") -> Scenario:
    """Build and validate a scenario from a parsed config mapping."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be an object/table")
    for key in data:
        if key not in _TOP:
            raise ConfigError(f"{origin}: unknown key {key!r} (known: {', '.join(sorted(_TOP))})")
    version = data.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError(f"{origin}: version must be {CONFIG_VERSION}, got {version!r}")
    if "base" in data:
        if not isinstance(data["base"], str):
            raise ConfigError(f"{origin}: base must be a scenario name, got {data['base']!r}")
        try:
            sc = get_scenario(data["base"])
        except KeyError as exc:
            raise ConfigError(f"{origin}: base: {exc.args[0]}") from None
    else:
        if "name" not in data:
            raise ConfigError(f"{origin}: missing key 'name' (or give 'base' to start from a named scenario)")
        sc = Scenario("", "", Dataset(), Storage(), Fpga(), Trainer(), Selection())
    changes: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in data:
            changes[key] = _coerce(key, str, data[key])
    if "engine" in data:
        changes["engine"] = _coerce("engine", Engine, data["engine"])
    if "drives_per_host" in data:
        changes["drives_per_host"] = _coerce("drives_per_host", int, data["drives_per_host"])
    if "drive_counts" in data:
        dc = data["drive_counts"]
        if not isinstance(dc, list) or not dc:
            raise ConfigError(f"drive_counts must be a non-empty list of integers, got {dc!r}")
        changes["drive_counts"] = tuple(_coerce(f"drive_counts[{i}]", int, v) for i, v in enumerate(dc))
    for name, cls in _SECTIONS.items():
        if name in data:
            changes[name] = _section(name, cls, getattr(sc, name), data[name])
    sc = dataclasses.replace(sc, **changes)
    try:
        sc.validate()
    except ValueError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return sc
