"""cocotb test benches of the RTL kernel; run through sim.rtl_runner (see tests/rtl/test_*.py)."""
