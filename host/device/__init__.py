"""The device layer: one host code path that drives the NeSSA kernels on a SmartSSD or the emulator.

* :mod:`.loader` -- real ``pyxrt`` when it imports and sees a device, else the emulator.
* :mod:`.emu` -- the pyxrt subset over the HLS kernels compiled for x86 (:mod:`.build`).
* :mod:`.flow` -- device -> xclbin -> kernel -> buffers -> sync -> run -> wait -> check.
* :mod:`.p2p` -- Arrow shard byte runs for the P2P read path.
* :mod:`.direct_io` -- short-read loops, O_DIRECT, device buffers cut to the P2P BAR.
* :mod:`.pcie` -- sysfs: the FPGA paired with a store's drive, P2P state and BAR, XRT's device order.
* :mod:`.backend` -- the EMU / XRT / PYNQ selection backends.
* :mod:`.opcounts` -- per-class operation counts for the system model.
* :mod:`.pynq_adapter` -- optional PYNQ <= 3.0.1 runtime.
"""

__all__ = ["open_flow", "load_runtime"]

from host.device.loader import load_runtime, open_flow
