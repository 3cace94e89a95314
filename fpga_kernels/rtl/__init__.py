"""The RTL facility-location kernel ``nessa_fl_rtl``: register map and host-side buffer layout.

The Verilog lives beside this file (one module per file, top ``nessa_fl_rtl.v``); the C++ model
the emulator loads is ``cmodel/nessa_fl_rtl.cpp``; README.md documents the design and numbers.
"""

from fpga_kernels.rtl.regmap import (
    ARG_ORDER,
    MODE_EXACT,
    MODE_NAIVE,
    MODE_STOCHASTIC,
    PART_DESC_DTYPE,
    ROW_ALIGN,
    REG,
    STATUS_BITS,
    KernelArgs,
    cycle_model,
    decode_status,
    pack_rows,
)

__all__ = ["ARG_ORDER", "MODE_EXACT", "MODE_NAIVE", "MODE_STOCHASTIC", "PART_DESC_DTYPE", "ROW_ALIGN", "REG", "STATUS_BITS",
           "KernelArgs", "cycle_model", "decode_status", "pack_rows"]
