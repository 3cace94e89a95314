"""A bench that only lets simulation time pass: with a bad parameter the module's elaboration
check ($fatal at time 0) must end the run before this test finishes."""

import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def test_elaboration_reaches_time_10ns(dut):
    await Timer(10, unit="ns")
