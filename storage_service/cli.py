"""The ``nessa`` command line.

Each sub-command lives next to the code it drives, in a module exposing
``register(subparsers)``; that function adds its parser(s) and sets ``func(args) -> int``.
Modules keep heavy imports (torch, grpc) inside ``func`` so ``nessa --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "build_parser", "CliError"]

#: Modules that contribute sub-commands, in the order they appear in ``--help``.
_COMMAND_MODULES = (
    "storage_service._cli_store",  # ingest, info, verify
    "storage_service._cli_serve",  # serve
    "host._cli",  # select
    "host.quantize._cli",  # export
    "trainer._cli",  # train, demo
    "sim._cli",  # simulate
)


class CliError(Exception):
    """A user-facing error: printed as ``nessa: error: <message>``, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nessa", description="NeSSA: near-storage data selection.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency: surface it
                raise
            continue  # command module not part of this build
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"nessa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nessa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Re-import so CliError is the package's class, not a __main__ copy of it.
    from storage_service.cli import main as _main

    sys.exit(_main())
