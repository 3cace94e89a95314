"""The ``nessa`` command line.

One module per group of sub-commands (``nessa/_cli_*.py``), each exposing
``register(subparsers)``; that function adds its parser(s) and sets ``func(args) -> int``.
Modules keep heavy imports (torch, grpc) inside ``func`` so ``nessa --help`` stays fast.
The libraries (host, storage_service, trainer, sim) never import this package.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nessa._errors import CliError

__all__ = ["main", "build_parser", "CliError"]

#: Modules that contribute sub-commands, in the order they appear in ``--help``.
_COMMAND_MODULES = (
    "nessa._cli_store",  # ingest, info, verify
    "nessa._cli_serve",  # serve
    "nessa._cli_select",  # select
    "nessa._cli_export",  # export
    "nessa._cli_train",  # train, demo
    "nessa._cli_simulate",  # simulate
    "nessa._cli_distill",  # distill
    "nessa._cli_embed",  # embed
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nessa", description="NeSSA: near-storage data selection.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
    sys.exit(main())
