"""The golden model: integer / fixed-point semantics that every kernel must match bit for bit.

The emulated HLS kernels, the RTL kernels (simulated with cocotb) and the C++ models are all
checked against the functions here. Change a semantic here and every kernel must follow.
"""

from host.golden.greedy import GreedyResult, greedy_fixed

__all__ = ["GreedyResult", "greedy_fixed"]
