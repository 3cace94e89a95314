"""System performance model of SmartSSD clusters: what near-storage selection buys at scale.

Entry points: :func:`simulate` (one scenario at one drive count -> per-system results),
:func:`sweep`, the named :data:`SCENARIOS`, :func:`load_config` for scenario files, and
``nessa simulate``. Every input carries its unit and source (:func:`sources`); SIMULATION.md
is the rendered table and the calibration against this machine.
"""

from .config import ConfigError, load_config, scenario_from_dict
from .model import Comparison, System, SystemResult, selection_seconds, simulate
from .params import Cpu, Dataset, Engine, Fpga, Optimizer, Scenario, Selection, Storage, Trainer, sources
from .report import break_even, format_break_even, format_table, sweep
from .scenarios import SCENARIOS, get_scenario, scenario_names

__all__ = [
    "Comparison", "ConfigError", "Cpu", "Dataset", "Engine", "Fpga", "Optimizer", "SCENARIOS", "Scenario",
    "Selection", "Storage", "System", "SystemResult", "Trainer", "break_even", "format_break_even",
    "format_table", "get_scenario", "load_config", "scenario_from_dict", "scenario_names",
    "selection_seconds", "simulate", "sources", "sweep",
]
