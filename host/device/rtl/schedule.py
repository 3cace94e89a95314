"""Cycle model of ``nessa_fl_rtl``: the engine's schedule replayed at transaction level.

The RTL's cycle count is a deterministic function of the class (through the order of picks),
the build parameters and two properties of the memory behind m_axi:

* ``read_gap`` -- cycles from a burst's AR handshake to its first R beat; the memory pipelines
  bursts (one ID, data in order): burst b's first beat comes in cycle
  ``max(AR_b + read_gap, last beat of burst b-1 + 1)`` (sim/tb/latency_ram.py is that rule; the
  cocotbext-axi RAM follows it with read_gap = 2);
* ``write_busy`` -- cycles the single-word write master stays busy after a word is accepted.

In stochastic mode (``mode=1``) the step's candidates are the golden model's sample
(:func:`stochastic_samples` replays host/golden/stochastic.py's pool given the picks). The
remainders come from fl_draws: ``rng_units`` fl_urem units, round robin, each taking
``sample_cycles(rng_bpc)`` cycles; draw g (counted over the whole run) is issued in cycle
``I(g) = max(I(g-1) + 1, T(g - rng_units))`` (``I(0) = 1``, the cycle after CHECK; ``T`` = the
cycle the swap stage takes a remainder) and is ready ``sample_cycles`` later; the swap then
needs 4 cycles to the row job, all overlapping the previous row's read.

The read master (fl_axi_rd, ``outstanding`` = its OUTSTANDING) accepts a job in cycle h, issues
its first AR in h + 1 and one per cycle after, each only while fewer than ``outstanding`` bursts
await their last beat (an AR waits for the cycle after the last beat of the burst ``outstanding``
back), and accepts the next job the cycle after the job's last AR (:class:`_ReadMaster`).

This module replays the same state machine (fl_engine.v) transaction by transaction; it is
exact (tests/rtl/test_kernel.py checks it against Icarus cycle for cycle) when the memory's
latencies are those constants, which holds for the cocotbext-axi RAM without pauses. The
benchmark uses it to extrapolate simulated runs to classes too large to simulate in full, and
the C++ model (cmodel/nessa_fl_rtl.cpp) counts cycles the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import deque

from host.golden.stochastic import seed_state, xorshift32

__all__ = ["MemTiming", "COCOTB_AXI_RAM", "OUTSTANDING", "row_bursts", "run_cycles", "cycle_breakdown", "parts_run_cycles",
           "sample_cycles", "draw_issue", "stochastic_samples"]


@dataclass(frozen=True)
class MemTiming:
    """Latency constants of the memory behind m_axi (see module docstring)."""

    read_gap: int
    write_busy: int


#: The cocotbext-axi AxiRam used by the benches (fitted once, checked by the tests).
COCOTB_AXI_RAM = MemTiming(read_gap=2, write_busy=3)

#: fl_axi_rd's OUTSTANDING in the shipped build (bursts in flight).
OUTSTANDING = 8


def row_bursts(addr: int, beats: int, bytes_per_beat: int, max_burst: int) -> list[int]:
    """Burst lengths fl_axi_rd issues for one row: <= max_burst beats, never across 4 KiB."""
    out = []
    while beats:
        page_left = max(1, (4096 - (addr & 4095)) // bytes_per_beat)  # >= 1 off a bus word (C model)
        b = min(beats, max_burst, page_left)
        out.append(b)
        addr += b * bytes_per_beat
        beats -= b
    return out


class _ReadMaster:
    """fl_axi_rd's timing against a pipelined memory (module docstring): job handshakes, AR cycles,
    last-beat cycles. One instance lives through a whole kernel run."""

    def __init__(self, mem: MemTiming, outstanding: int, bytes_per_beat: int, max_burst: int):
        if outstanding < 1:
            raise ValueError(f"outstanding must be >= 1, got {outstanding}")
        self.mem, self.bpb, self.max_burst = mem, bytes_per_beat, max_burst
        self.ends: deque = deque(maxlen=outstanding)  # last-beat cycles of the latest bursts
        self.ready = 0                                # first cycle a new job can be accepted
        self.last_end = -1                            # last beat of the latest burst

    def job(self, want: int, addr: int, beats: int) -> tuple[int, int]:
        """A job presented from cycle ``want``: (handshake cycle, cycle of its last beat on R)."""
        h = max(want, self.ready)
        a = h
        for b in row_bursts(addr, beats, self.bpb, self.max_burst):
            a += 1
            if len(self.ends) == self.ends.maxlen:   # FIFO full: wait for the oldest burst's last beat
                a = max(a, self.ends[0] + 1)
            self.last_end = max(a + self.mem.read_gap, self.last_end + 1) + b - 1
            self.ends.append(self.last_end)
        self.ready = a + 1
        return h, self.last_end


def sample_cycles(rng_bpc: int = 2) -> int:
    """fl_urem's latency: a draw started in cycle S has its remainder in cycle S + 32/rng_bpc + 1."""
    return 32 // rng_bpc + 1


def draw_issue(prev_issue: int, takes: list[int], rng_units: int) -> int:
    """Cycle fl_draws issues the next draw (index len(takes)): one per cycle, to a unit whose
    previous draw (rng_units back) has been taken, at the earliest in the cycle it is taken."""
    g = len(takes)
    return max(prev_issue + 1, takes[g - rng_units] if g >= rng_units else 0)


def stochastic_samples(n: int, k: int, seed: int, sample_size: int, ids) -> list[list[int]]:
    """Candidates of every step in pool order (host/golden/stochastic.py), given the picks ``ids``."""
    pool = list(range(n))
    m = n
    state = seed_state(seed)
    out = []
    for t in range(k):
        cnt = min(sample_size, m)
        for r in range(cnt):
            state = xorshift32(state)
            p = r + state % (m - r)
            pool[r], pool[p] = pool[p], pool[r]
        out.append(pool[:cnt])
        pos = pool.index(int(ids[t]), 0, cnt)  # ValueError: the pick was not in the sample
        pool[pos], pool[m - 1] = pool[m - 1], pool[pos]
        m -= 1
    return out


def _replay(g: int, wr_free: int, sim_ptr: int, n: int, k: int, ld: int, ids, lanes: int, rm: _ReadMaster,
            mem: MemTiming, nsteps: int, mode: int, seed: int, sample_size: int, rng_bpc: int,
            rng_units: int) -> dict:
    """One class (or part) from the cycle ``g`` before its CLEAR (CHECK, or a part's S_P_GO, where
    fl_draws starts) through ``nsteps`` greedy steps and, when all k ran, its weight pass.
    "end": the cycle of the state after the weight pass (S_FINISH or S_P_NEXT)."""
    beats = -(-n // lanes)
    lat = (lanes - 1).bit_length() + 2  # last beat -> row_valid seen: S1 register + tree levels + acc + 1

    def rd(want: int, j: int) -> tuple[int, int]:  # row job j presented from `want`: (handshake, row_valid)
        h, e = rm.job(want, sim_ptr + j * ld * 2, beats)
        return h, e + lat

    selected = [False] * n
    ids = [int(i) for i in ids]
    samples = stochastic_samples(n, nsteps, seed, sample_size, ids) if mode == 1 else None
    e_draw = sample_cycles(rng_bpc)
    takes: list[int] = []               # cycle the swap stage took each remainder
    issue = g                           # fl_draws issues its first draw in the cycle after g
    c = g + 1 + n                       # CLEAR for n cycles, then ITER
    step_cycles = []
    jobs0 = []
    evals = 0
    for t in range(nsteps):
        t0 = c
        cur = c + 1                     # ITER, then SCAN_RD of j = 0 (stochastic: S_SM_WAIT of r = 0)
        last_row = None
        if samples is not None:
            for j in samples[t]:
                issue = draw_issue(issue, takes, rng_units)
                took = max(cur, issue + e_draw)  # S_SM_WAIT takes the remainder
                takes.append(took)
                h, last_row = rd(took + 4, j)  # RD_P, SWAP, CHK, then S_SM_ISSUE until job_ready
                if t == 0:
                    jobs0.append(h)
                evals += 1
                cur = h + 1
        for j in range(n if samples is None else 0):
            if selected[j]:
                cur += 2
                continue
            h, last_row = rd(cur + 2, j)  # SCAN_RD, SCAN_CHK, then SCAN_ISSUE until job_ready
            if t == 0:
                jobs0.append(h)
            evals += 1
            cur = h + 1
        w0 = max(cur, last_row + 1) + 1  # WAIT_ROWS until every row summed
        h_w = max(w0, wr_free)
        for _ in range(2):
            h_w = max(h_w + 1 + mem.write_busy, h_w)
        wr_free = h_w + 1 + mem.write_busy
        u = h_w + 2                     # SEL_SET, UPD_ISSUE
        j = ids[t]
        selected[j] = True
        r = rd(u, j)[1]                 # UPD_WAIT until the update row's row_valid
        c = r + 1
        step_cycles.append(c - t0)
    out = {"steps": step_cycles, "jobs0": jobs0, "evals": evals, "w_start": c, "end": None, "wr_free": wr_free}
    if nsteps < k:
        return out
    cur = c
    for j in range(n):
        if not selected[j]:
            cur += 2
            continue
        r = rd(cur + 2, j)[1]
        h_w = max(r + 1, wr_free)
        wr_free = h_w + 1 + mem.write_busy
        cur = h_w + 1
    out.update(end=cur, wr_free=wr_free)
    return out


def cycle_breakdown(sim_ptr: int, n: int, k: int, ld: int, ids, lanes: int, max_burst: int,
                    mem: MemTiming = COCOTB_AXI_RAM, steps: int | None = None, mode: int = 0,
                    seed: int = 0, sample_size: int = 0, rng_bpc: int = 2, rng_units: int = 4,
                    outstanding: int = OUTSTANDING) -> dict:
    """Replay the engine; ``ids`` are the picks in order (from the golden model of ``mode``).

    Returns {"cycles": value of the cycles register, "steps": [cycles of each greedy step],
    "clear", "weights": cycles of those phases, "jobs0": [cycle of each row-job handshake of
    step 0, counted from the CHECK cycle = 0], "evals": candidate rows read in greedy steps}. With ``steps`` < k only the first ``steps``
    greedy steps are replayed (no weight pass) and "cycles" is None.
    """
    nsteps = k if steps is None else min(steps, k)
    rm = _ReadMaster(mem, outstanding, 2 * lanes, max_burst)
    r = _replay(0, 0, sim_ptr, n, k, ld, ids, lanes, rm, mem, nsteps, mode, seed, sample_size, rng_bpc, rng_units)
    if nsteps < k:
        return {"cycles": None, "steps": r["steps"], "clear": 1 + n, "weights": None, "jobs0": r["jobs0"],
                "evals": r["evals"]}
    f = max(r["end"], r["wr_free"])
    return {"cycles": f + 2, "steps": r["steps"], "clear": 1 + n, "weights": f - r["w_start"], "jobs0": r["jobs0"],
            "evals": r["evals"]}


def parts_run_cycles(sim_ptr: int, ld: int, parts, ids, lanes: int, max_burst: int,
                     mem: MemTiming = COCOTB_AXI_RAM, mode: int = 0, rng_bpc: int = 2, rng_units: int = 4,
                     outstanding: int = OUTSTANDING) -> int:
    """Value of the cycles register for one run with ``parts`` = [(n, k, seed, sample_size), ...]
    (the descriptors, in order) and ``ids`` = the picks of each part. A descriptor that fails the
    kernel's checks ends the run there, as on chip."""
    desc_beats = max(1, 8 // lanes)               # DESC_BEATS = 128 / (16 lanes) beats (>= 1), in one 4 KiB page
    lat = (lanes - 1).bit_length() + 1
    rm = _ReadMaster(mem, outstanding, 2 * lanes, max_burst)
    cur, wr_free, base = 1, 0, sim_ptr           # S_P_FETCH in the cycle after CHECK
    for i, (n, k, seed, ss) in enumerate(parts):
        _, e = rm.job(cur + 1, 0, desc_beats)    # S_P_ISSUE: the read master is idle here
        g = e + 1 + lat + 2                      # S_P_WAIT sees row_valid, then S_P_LOAD, S_P_GO
        if not (1 <= n <= ld and 1 <= k <= n and (mode != 1 or ss >= 1)):  # N_MAX is the caller's to respect
            return max(g + 1, wr_free) + 2
        r = _replay(g, wr_free, base, n, k, ld, ids[i], lanes, rm, mem, k, mode, seed, ss, rng_bpc, rng_units)
        wr_free = r["wr_free"]
        base += n * ld * 2
        if i == len(parts) - 1:
            return max(r["end"], wr_free) + 2
        cur = r["end"] + 2                       # S_P_NEXT, S_P_ADV, then S_P_FETCH
    raise ValueError("parts must not be empty")


def run_cycles(sim_ptr: int, n: int, k: int, ld: int, ids, lanes: int, max_burst: int,
               mem: MemTiming = COCOTB_AXI_RAM, mode: int = 0, seed: int = 0, sample_size: int = 0,
               rng_bpc: int = 2, rng_units: int = 4, outstanding: int = OUTSTANDING) -> int:
    """Value of the kernel's cycles register for one run (see cycle_breakdown)."""
    return cycle_breakdown(sim_ptr, n, k, ld, ids, lanes, max_burst, mem, mode=mode, seed=seed,
                           sample_size=sample_size, rng_bpc=rng_bpc, rng_units=rng_units,
                           outstanding=outstanding)["cycles"]
