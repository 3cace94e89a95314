"""cocotb test benches of the RTL kernel; run through sim.rtl_runner (see tests/test_rtl_*.py)."""
