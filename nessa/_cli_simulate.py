"""``nessa simulate``: the SmartSSD-cluster performance model from the command line.

    nessa simulate --scenario imagenet-8 [--out DIR] [--no-plots] [--sources] [--kernels as-written]
    nessa simulate --config my-cluster.json|.toml [--out DIR]
    nessa simulate --list
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="model per-epoch time, bytes moved and energy of full / GPU-host / NeSSA selection on SmartSSD clusters",
        description=(
            "Compare (a) streaming the full data set, (b) selecting on the GPU host and (c) NeSSA "
            "(selection on each SmartSSD) across drive counts; print a table and where NeSSA stops "
            "paying, and write PNG plots. See SIMULATION.md for every assumption and its source."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenario", metavar="NAME", help="a named scenario (see --list)")
    src.add_argument("--config", metavar="FILE", help="a scenario file (.json, or .toml); schema in sim/perf/config.py")
    src.add_argument("--list", action="store_true", help="list the named scenarios and exit")
    p.add_argument("--out", metavar="DIR", default="nessa-sim", help="folder for the PNG plots (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="print the table only")
    p.add_argument("--sources", action="store_true", help="also print every input with its unit and source")
    p.add_argument("--no-break-even", action="store_true", help="skip the where-NeSSA-stops-paying search")
    p.add_argument("--kernels", choices=("target", "as-written"), default="target",
                   help="FPGA multiply-accumulate speed: the DSP-bound design target (default) or the "
                        "repository's HLS kernels as their pragmas stand (1 MAC/cycle features, 64 MAC/cycle distances)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from nessa._errors import CliError

    import dataclasses

    from sim.perf.config import ConfigError, load_config
    from sim.perf.params import Fpga

    AS_WRITTEN = Fpga.as_written()
    from sim.perf.report import format_break_even, format_sources, format_table, sweep
    from sim.perf.scenarios import SCENARIOS, get_scenario, scenario_names

    if args.list:
        for name in scenario_names():
            try:
                print(f"{name:18s} {get_scenario(name).description}")
            except (KeyError, ValueError) as exc:  # e.g. this-machine before calibration
                print(f"{name:18s} (unavailable: {exc})")
        return 0
    try:
        if args.scenario is not None:
            if args.scenario not in SCENARIOS:
                raise CliError(f"unknown scenario {args.scenario!r}; known: {', '.join(scenario_names())}")
            sc = get_scenario(args.scenario)
        else:
            sc = load_config(args.config)
        if args.kernels == "as-written":
            sc = dataclasses.replace(sc, fpga=dataclasses.replace(
                sc.fpga, feature_macs_per_cycle=AS_WRITTEN.feature_macs_per_cycle,
                distance_macs_per_cycle=AS_WRITTEN.distance_macs_per_cycle),
                description=sc.description + " [FPGA kernels as written]")
        sc.validate()
    except (ConfigError, ValueError, KeyError) as exc:
        raise CliError(str(exc.args[0] if exc.args else exc)) from None
    rows = sweep(sc)
    print(format_table(sc, rows))
    if not args.no_break_even:
        print()
        print(format_break_even(sc, sc.storage.drives))
    if args.sources:
        print()
        print(f"# inputs of {sc.name} (at {sc.storage.drives} drives)")
        print(format_sources(sc))
    if not args.no_plots:
        from sim.perf.plots import write_plots

        try:
            paths = write_plots(sc, rows, args.out)
        except OSError as exc:
            raise CliError(f"cannot write plots to {args.out!r}: {exc}") from None
        print()
        for path in paths:
            print(f"wrote {path}")
    return 0
