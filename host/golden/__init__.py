"""The golden model: integer / fixed-point semantics that every kernel must match bit for bit.

The emulated HLS kernels, the RTL kernels (simulated with cocotb) and the C++ models are all
checked against the functions here. Change a semantic here and every kernel must follow.

* :mod:`.greedy` -- exact greedy facility location over integer similarity rows.
* :mod:`.stochastic` -- the stochastic variant (xorshift32 sampling).
* :mod:`.similarity` -- int16 Q1.14 features and the integer similarity ``maxd_q - isqrt(d2)``.
* :mod:`.nessa_greedy` -- the whole ``nessa_greedy`` kernel (features in, selection out).
* :mod:`.softmax` -- fixed-point softmax - onehot (exp approximation, rounding).
* :mod:`.qforward` -- the int8 layer program of ``nessa_features`` (needs :mod:`host.quantize.format`).
"""

from host.golden.greedy import GreedyResult, greedy_fixed
from host.golden.nessa_greedy import MODE_LAZY, MODE_NAIVE, MODE_STOCHASTIC, nessa_greedy_ref
from host.golden.similarity import FEAT_FRAC, isqrt_u64, maxd_to_q, quantize_features, resolve_maxd_q, sim_q
from host.golden.softmax import exp_q, softmax_onehot_q, softmax_q
from host.golden.stochastic import greedy_stochastic_fixed, seed_state, stochastic_sample_size, xorshift32

__all__ = [
    "GreedyResult", "greedy_fixed",
    "MODE_LAZY", "MODE_NAIVE", "MODE_STOCHASTIC", "nessa_greedy_ref",
    "FEAT_FRAC", "isqrt_u64", "maxd_to_q", "quantize_features", "resolve_maxd_q", "sim_q",
    "exp_q", "softmax_onehot_q", "softmax_q",
    "greedy_stochastic_fixed", "seed_state", "stochastic_sample_size", "xorshift32",
]
