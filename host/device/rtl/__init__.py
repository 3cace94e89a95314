"""The RTL facility-location kernel ``nessa_fl_rtl``: register map and host-side buffer layout.

The Verilog lives with the kernel sources in ``fpga_kernels/rtl`` (one module per file, top
``nessa_fl_rtl.v``); the C++ model the emulator loads is ``fpga_kernels/rtl/cmodel/nessa_fl_rtl.cpp``;
``fpga_kernels/rtl/README.md`` documents the design and numbers. This package is the Python that
drives and models that kernel (register map, parts layout, cycle schedule, C-model loader).
"""

from host.device.rtl.regmap import (
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
