"""Cycle model of ``nessa_fl_rtl``: the engine's schedule replayed at transaction level.

The RTL's cycle count is a deterministic function of the class (through the order of picks),
the build parameters and two properties of the memory behind m_axi:

* ``read_gap`` -- cycles from a burst's AR cycle to its first R beat, plus the AR cycle
  (one burst is outstanding at a time, so this is paid once per burst);
* ``write_busy`` -- cycles the single-word write master stays busy after a word is accepted.

In stochastic mode (``mode=1``) the step's candidates are the golden model's sample
(:func:`stochastic_samples` replays host/golden/stochastic.py's pool given the picks). The
remainders come from fl_draws: ``rng_units`` fl_urem units, round robin, each taking
``sample_cycles(rng_bpc)`` cycles; draw g (counted over the whole run) is issued in cycle
``I(g) = max(I(g-1) + 1, T(g - rng_units))`` (``I(0) = 1``, the cycle after CHECK; ``T`` = the
cycle the swap stage takes a remainder) and is ready ``sample_cycles`` later; the swap then
needs 4 cycles to the row job, all overlapping the previous row's read.

This module replays the same state machine (fl_engine.v) transaction by transaction; it is
exact (tests/test_rtl_kernel.py checks it against Icarus cycle for cycle) when the memory's
latencies are those constants, which holds for the cocotbext-axi RAM without pauses. The
benchmark uses it to extrapolate simulated runs to classes too large to simulate in full, and
the C++ model (cmodel/nessa_fl_rtl.cpp) counts cycles the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.golden.stochastic import seed_state, xorshift32

__all__ = ["MemTiming", "COCOTB_AXI_RAM", "row_bursts", "run_cycles", "cycle_breakdown", "parts_run_cycles",
           "sample_cycles", "draw_issue", "stochastic_samples"]


@dataclass(frozen=True)
class MemTiming:
    """Latency constants of the memory behind m_axi (see module docstring)."""

    read_gap: int
    write_busy: int


#: The cocotbext-axi AxiRam used by the benches (fitted once, checked by the tests).
COCOTB_AXI_RAM = MemTiming(read_gap=2, write_busy=3)


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


def _replay(g: int, wr_free: int, sim_ptr: int, n: int, k: int, ld: int, ids, lanes: int, max_burst: int,
            mem: MemTiming, nsteps: int, mode: int, seed: int, sample_size: int, rng_bpc: int,
            rng_units: int) -> dict:
    """One class (or part) from the cycle ``g`` before its CLEAR (CHECK, or a part's S_P_GO, where
    fl_draws starts) through ``nsteps`` greedy steps and, when all k ran, its weight pass.
    "end": the cycle of the state after the weight pass (S_FINISH or S_P_NEXT)."""
    bpb = 2 * lanes
    beats = -(-n // lanes)
    lat = (lanes - 1).bit_length() + 1  # last beat -> row_valid: S1 register + tree levels + acc
    cost = {}

    def rd(j: int) -> int:              # read-master busy cycles for row j (S_AR.. last beat)
        if j not in cost:
            cost[j] = sum(mem.read_gap + b for b in row_bursts(sim_ptr + j * ld * 2, beats, bpb, max_burst))
        return cost[j]

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
        rm_free = 0
        last_row = None
        if samples is not None:
            for j in samples[t]:
                issue = draw_issue(issue, takes, rng_units)
                took = max(cur, issue + e_draw)  # S_SM_WAIT takes the remainder
                takes.append(took)
                h = max(took + 4, rm_free)  # RD_P, SWAP, CHK, then S_SM_ISSUE until job_ready
                if t == 0:
                    jobs0.append(h)
                evals += 1
                rm_free = h + 1 + rd(j)
                last_row = rm_free + lat
                cur = h + 1
        for j in range(n if samples is None else 0):
            if selected[j]:
                cur += 2
                continue
            h = max(cur + 2, rm_free)   # SCAN_RD, SCAN_CHK, then SCAN_ISSUE until job_ready
            if t == 0:
                jobs0.append(h)
            evals += 1
            rm_free = h + 1 + rd(j)
            last_row = rm_free + lat
            cur = h + 1
        w0 = max(cur, last_row + 1) + 1  # WAIT_ROWS until every row summed
        h_w = max(w0, wr_free)
        for _ in range(2):
            h_w = max(h_w + 1 + mem.write_busy, h_w)
        wr_free = h_w + 1 + mem.write_busy
        u = h_w + 2                     # SEL_SET, UPD_ISSUE
        j = ids[t]
        selected[j] = True
        r = u + 1 + rd(j) + lat         # UPD_WAIT until the update row's row_valid
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
        h = cur + 2
        r = h + 1 + rd(j) + lat
        h_w = max(r + 1, wr_free)
        wr_free = h_w + 1 + mem.write_busy
        cur = h_w + 1
    out.update(end=cur, wr_free=wr_free)
    return out


def cycle_breakdown(sim_ptr: int, n: int, k: int, ld: int, ids, lanes: int, max_burst: int,
                    mem: MemTiming = COCOTB_AXI_RAM, steps: int | None = None, mode: int = 0,
                    seed: int = 0, sample_size: int = 0, rng_bpc: int = 2, rng_units: int = 4) -> dict:
    """Replay the engine; ``ids`` are the picks in order (from the golden model of ``mode``).

    Returns {"cycles": value of the cycles register, "steps": [cycles of each greedy step],
    "clear", "weights": cycles of those phases, "jobs0": [cycle of each row-job handshake of
    step 0, counted from the CHECK cycle = 0], "evals": candidate rows read in greedy steps}. With ``steps`` < k only the first ``steps``
    greedy steps are replayed (no weight pass) and "cycles" is None.
    """
    nsteps = k if steps is None else min(steps, k)
    r = _replay(0, 0, sim_ptr, n, k, ld, ids, lanes, max_burst, mem, nsteps, mode, seed, sample_size, rng_bpc,
                rng_units)
    if nsteps < k:
        return {"cycles": None, "steps": r["steps"], "clear": 1 + n, "weights": None, "jobs0": r["jobs0"],
                "evals": r["evals"]}
    f = max(r["end"], r["wr_free"])
    return {"cycles": f + 2, "steps": r["steps"], "clear": 1 + n, "weights": f - r["w_start"], "jobs0": r["jobs0"],
            "evals": r["evals"]}


def parts_run_cycles(sim_ptr: int, ld: int, parts, ids, lanes: int, max_burst: int,
                     mem: MemTiming = COCOTB_AXI_RAM, mode: int = 0, rng_bpc: int = 2, rng_units: int = 4) -> int:
    """Value of the cycles register for one run with ``parts`` = [(n, k, seed, sample_size), ...]
    (the descriptors, in order) and ``ids`` = the picks of each part. A descriptor that fails the
    kernel's checks ends the run there, as on chip."""
    desc = mem.read_gap + max(1, 8 // lanes)      # one burst of DESC_BEATS = 128 / (16 lanes) beats (>= 1)
    lat = (lanes - 1).bit_length() + 1
    cur, wr_free, base = 1, 0, sim_ptr           # S_P_FETCH in the cycle after CHECK
    for i, (n, k, seed, ss) in enumerate(parts):
        h = cur + 1                              # S_P_ISSUE: the read master is idle here
        g = h + 1 + desc + lat + 2               # S_P_WAIT sees row_valid, then S_P_LOAD, S_P_GO
        if not (1 <= n <= ld and 1 <= k <= n and (mode != 1 or ss >= 1)):  # N_MAX is the caller's to respect
            return max(g + 1, wr_free) + 2
        r = _replay(g, wr_free, base, n, k, ld, ids[i], lanes, max_burst, mem, k, mode, seed, ss, rng_bpc, rng_units)
        wr_free = r["wr_free"]
        base += n * ld * 2
        if i == len(parts) - 1:
            return max(r["end"], wr_free) + 2
        cur = r["end"] + 2                       # S_P_NEXT, S_P_ADV, then S_P_FETCH
    raise ValueError("parts must not be empty")


def run_cycles(sim_ptr: int, n: int, k: int, ld: int, ids, lanes: int, max_burst: int,
               mem: MemTiming = COCOTB_AXI_RAM, mode: int = 0, seed: int = 0, sample_size: int = 0,
               rng_bpc: int = 2, rng_units: int = 4) -> int:
    """Value of the kernel's cycles register for one run (see cycle_breakdown)."""
    return cycle_breakdown(sim_ptr, n, k, ld, ids, lanes, max_burst, mem, mode=mode, seed=seed,
                           sample_size=sample_size, rng_bpc=rng_bpc, rng_units=rng_units)["cycles"]
