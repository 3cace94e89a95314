"""cocotb bench of fl_axi_rd: bursts split at MAX_BURST and 4 KiB pages, data, last and tag of
every beat in order, several jobs and up to OUTSTANDING bursts in flight, backpressure from the
memory (AR / R pauses) and from the consumer (out_ready), and no burst left in flight at the end.

Bench parameters: the HDL ones, ``pause`` (none / idle / backpressure: memory channels, the job
producer and the consumer) and ``latency`` (0: cocotbext-axi ``AxiRamRead``, ~2 cycles; L >= 1:
sim/tb/latency_ram.py, first beat L cycles after AR, bursts pipelined). With a latency memory
and no pauses, every AR must come in the cycle the issue rule of host/device/rtl/schedule.py
says (the job's first AR the cycle after it is accepted, then one per cycle, but only while
fewer than OUTSTANDING bursts await their last beat), and with OUTSTANDING > 1 bursts must
really overlap.
"""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiReadBus
from cocotbext.axi.axi_ram import AxiRamRead

from sim.tb.common import params, pause_pattern, reset, start_clock
from sim.tb.latency_ram import LatencyRead

MEM = 1 << 16


class _Image:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, addr: int, n: int) -> bytes:
        return self.data[addr: addr + n]


def _jobs(rng: random.Random, p: dict, nbytes: int, max_burst: int) -> list[tuple[int, int]]:
    max_beats = min((1 << int(p["BEATS_W"])) - 1, 300)
    out = []
    for _ in range(30):
        beats = max(1, min(max_beats, rng.choice([1, 2, 4, 4, max_burst, max_burst + 1, rng.randint(1, max_beats)])))
        page = rng.randrange(1, MEM // 4096 - 1) * 4096
        addr = page - rng.choice([nbytes, 2 * nbytes, 0, rng.randrange(0, 4096 // nbytes) * nbytes])
        addr = min(addr, MEM - beats * nbytes) // nbytes * nbytes
        out.append((addr, beats))
    return out


@cocotb.test()
async def test_jobs(dut):
    p = params()
    data_w, max_burst = int(p["DATA_W"]), int(p["MAX_BURST"])
    outstanding = int(p.get("OUTSTANDING", 8))
    mode = p.get("pause", "none")
    latency = int(p.get("latency", 0))
    nbytes = data_w // 8
    rng = random.Random(data_w + max_burst + outstanding)
    dut.rst.value = 1
    dut.job_valid.value = 0
    dut.out_ready.value = 1
    image = bytes(rng.randrange(256) for _ in range(MEM))
    if latency:
        mem = LatencyRead(dut, "m_axi", dut.clk, dut.rst, _Image(image), latency, ar_pause=pause_pattern(mode, 17))
    else:
        mem = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=MEM)
        mem.log.setLevel(logging.WARNING)
        mem.write(0, image)
        for i, ch in enumerate((mem.ar_channel, mem.r_channel)):
            gen = pause_pattern(mode, 17 + i)
            if gen is not None:
                ch.set_pause_generator(gen)
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)

    jobs = _jobs(rng, p, nbytes, max_burst)
    want_beats = sum(b for _, b in jobs)
    accepted = []   # cycle each job was accepted
    bursts = []     # (cycle, addr, beats) accepted on AR
    beats = []      # (cycle, data, last, tag) handed to the consumer
    ends = []       # cycle of each burst's last beat on R
    inflight_max = 0
    idx, pending, cycle = 0, False, 0
    r_left = []     # beats left of each burst in flight
    while len(beats) < want_beats:
        await FallingEdge(dut.clk)
        cycle += 1
        assert cycle < 200 * want_beats + 2000, f"stalled after {len(beats)} of {want_beats} beats"
        # the handshakes of the coming rising edge, as the signals stand mid-cycle
        if int(dut.m_axi_arvalid.value) and int(dut.m_axi_arready.value):
            bursts.append((cycle, int(dut.m_axi_araddr.value), int(dut.m_axi_arlen.value) + 1))
            r_left.append(bursts[-1][2])
        # consumer (RREADY = out_ready while a burst is owed: the R handshake is out_valid & ready)
        ready = 0 if (mode == "backpressure" and rng.random() < 0.4) else 1
        dut.out_ready.value = ready
        if ready and int(dut.out_valid.value):
            beats.append((cycle, int(dut.out_data.value), int(dut.out_last.value), int(dut.out_tag.value)))
            r_left[0] -= 1
            if r_left[0] == 0:
                r_left.pop(0)
                ends.append(cycle)
        inflight_max = max(inflight_max, len(r_left) + (1 if ends and ends[-1] == cycle else 0))
        # job producer: holds job_valid until accepted; idle / backpressure modes leave gaps
        if pending:
            idx, pending = idx + 1, False
            dut.job_valid.value = 0
        if idx < len(jobs) and (int(dut.job_valid.value) or mode == "none" or rng.random() < 0.7):
            addr, nb = jobs[idx]
            dut.job_valid.value, dut.job_addr.value, dut.job_beats.value, dut.job_tag.value = \
                1, addr, nb, idx % (1 << int(p["TAG_W"]))
            if int(dut.job_ready.value):
                pending = True
                accepted.append(cycle)
    dut.job_valid.value = 0
    dut.out_ready.value = 1

    assert len(accepted) == len(jobs)
    pos = 0
    b_iter = iter(bursts)
    for tag, (addr, nb) in enumerate(jobs):
        for i in range(nb):
            _, data, last, t = beats[pos + i]
            want = int.from_bytes(image[addr + i * nbytes: addr + (i + 1) * nbytes], "little")
            assert data == want, f"job {tag} beat {i}: data mismatch"
            assert last == int(i == nb - 1) and t == tag % (1 << int(p["TAG_W"])), f"job {tag} beat {i}: last/tag"
        pos += nb
        a, covered = addr, 0
        while covered < nb:
            _, ba, bn = next(b_iter)
            assert ba == a and 1 <= bn <= max_burst, f"job {tag}: burst {ba:#x}+{bn} (want {a:#x}, max {max_burst})"
            assert ba // 4096 == (ba + bn * nbytes - 1) // 4096, f"burst {ba:#x}+{bn} crosses a 4 KiB page"
            a, covered = a + bn * nbytes, covered + bn
        assert covered == nb, f"job {tag}: bursts cover {covered} of {nb} beats"
    assert inflight_max <= outstanding, f"{inflight_max} bursts in flight > OUTSTANDING={outstanding}"
    if latency and mode == "none":
        # the issue rule schedule.py models: first AR of a job the cycle after it is accepted, the
        # next one cycle later, each only once the burst OUTSTANDING back has delivered its last beat
        k = 0
        for j, (addr, nb) in enumerate(jobs):
            covered = 0
            while covered < nb:
                earliest = accepted[j] + 1 if covered == 0 else bursts[k - 1][0] + 1
                if k >= outstanding:
                    earliest = max(earliest, ends[k - outstanding] + 1)
                assert bursts[k][0] == earliest, f"burst {k} (job {j}): AR in cycle {bursts[k][0]}, rule says {earliest}"
                covered += bursts[k][2]
                k += 1
            if j + 1 < len(jobs):  # the next job is taken the cycle after this job's last AR
                assert accepted[j + 1] == bursts[k - 1][0] + 1, f"job {j + 1} accepted late"
        if outstanding > 1:
            assert inflight_max > 1, "bursts never overlapped"
    await ClockCycles(dut.clk, 5)
    assert int(dut.busy.value) == 0 and int(dut.err.value) == 0
    if latency:
        assert mem.empty(), "queues not empty"
    else:
        assert mem.ar_channel.empty() and mem.r_channel.empty() and mem.r_channel.idle(), "queues not empty"
