// nessa_fl_rtl.cpp -- C++ model of the RTL kernel nessa_fl_rtl (fpga_kernels/rtl/*.v) for the
// x86 emulator: same arguments in the same order as the kernel's register map, the same results
// bit for bit (host/golden/greedy.py for mode 0 / 2, host/golden/stochastic.py for mode 1), the same
// status word, and the same cycle count as the RTL
// in simulation (the engine's schedule replayed as host/device/rtl/schedule.py does).
//
// Argument contract (register order; pointers on m_axi_gmem, scalars 32-bit):
//   sim          in   uint16 [n][ld]  similarity rows, row j = s(j, i); ld % LANES == 0, ld >= n
//   n, k, ld          1 <= k <= n <= N_MAX, n <= ld < 2**24
//   out_ids      out  uint32 [k]      picks in selection order
//   out_gains    out  uint64 [k]      marginal gain of each pick
//   out_weights  out  uint32 [k]      members whose most similar selected element is ids[t]
//   out_stats    out  uint64 [2]      {status, cycles}; status bits as fl_engine.v (0 = ok;
//                                     bits 0-6 = refused: only the stats are written)
//   mode              0 / 2 exact greedy, 1 stochastic greedy (other values: status bit 5)
//   seed              mode 1: xorshift32 seed (the int's bit pattern, uint32)
//   sample_size       mode 1: candidates per step, >= 1 (0: status bit 6; unsigned, capped at m)
//   parts             0: one class (n, k, seed, sample_size). P >= 1: P parts back to back, each from
//   parts_ptr    in   uint32 [P][4] {n_i, k_i, seed_i, sample_size_i}; part i's rows follow part i-1's
//                     in sim (stride ld), its k_i results follow part i-1's (status bit 7: a bad
//                     descriptor, the run stops there after the earlier parts)
// Pointer alignment: the RTL needs sim on a bus word (XRT buffers are 4 KiB aligned on a card);
// host memory in emulation is only guaranteed the element alignment, so bit 3 checks that here.
//
// Dataflow of the modelled engine (see nessa_fl_rtl.v):
//   k x [ rows of unselected j (mode 1: of the step's xorshift32 partial Fisher-Yates sample of
//         the pool) --> LANES lanes: sum max(0, s - cover) --> argmax (ties: lowest j)
//         --> ids/gains words --> row j* --> cover = max(cover, row) ]
//   selected rows ascending --> count s == cover not yet claimed --> weights[pos(j)]
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#ifndef NESSA_FL_RTL_LANES
#define NESSA_FL_RTL_LANES 32  // LANES of the modelled build (shipping build: 32 = 512-bit bus)
#endif
#ifndef NESSA_FL_RTL_N_MAX
#define NESSA_FL_RTL_N_MAX 8192
#endif
#ifndef NESSA_FL_RTL_MAX_BURST
#define NESSA_FL_RTL_MAX_BURST 64
#endif
#ifndef NESSA_FL_RTL_RNG_BPC    // stochastic draw: fl_urem remainder bits per cycle (RNG_BPC)
#define NESSA_FL_RTL_RNG_BPC 2
#endif
#ifndef NESSA_FL_RTL_RNG_UNITS  // stochastic draw: fl_urem units of fl_draws, used round robin (RNG_UNITS)
#define NESSA_FL_RTL_RNG_UNITS 4
#endif
#ifndef NESSA_FL_RTL_OUTSTANDING  // read bursts in flight in fl_axi_rd (OUTSTANDING)
#define NESSA_FL_RTL_OUTSTANDING 8
#endif
#ifndef NESSA_FL_RTL_READ_GAP   // memory timing: AR handshake -> first R beat (bursts pipelined)
#define NESSA_FL_RTL_READ_GAP 2
#endif
#ifndef NESSA_FL_RTL_WRITE_BUSY  // memory timing: write master busy cycles per word
#define NESSA_FL_RTL_WRITE_BUSY 3
#endif

namespace {

constexpr int64_t kLanes = NESSA_FL_RTL_LANES;
constexpr uint32_t kNMax = NESSA_FL_RTL_N_MAX;
constexpr int64_t kMaxBurst = NESSA_FL_RTL_MAX_BURST;
constexpr int64_t kReadGap = NESSA_FL_RTL_READ_GAP;
constexpr int64_t kWriteBusy = NESSA_FL_RTL_WRITE_BUSY;
constexpr size_t kOutstanding = NESSA_FL_RTL_OUTSTANDING;
static_assert(kOutstanding >= 1 && kOutstanding <= 64, "OUTSTANDING must be in 1..64 (fl_axi_rd)");
// fl_urem latency of one stochastic draw (schedule.py sample_cycles); fl_draws keeps kDrawUnits in flight
constexpr int64_t kDrawCycles = 32 / NESSA_FL_RTL_RNG_BPC + 1;
constexpr size_t kDrawUnits = NESSA_FL_RTL_RNG_UNITS;

uint32_t xorshift32(uint32_t x) {
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// fl_axi_rd's timing (schedule.py _ReadMaster): a job presented from cycle `want` is accepted at
// h = max(want, ready); its bursts (<= kMaxBurst beats, never across 4 KiB) issue AR one per cycle
// from h + 1, each only once the burst kOutstanding back has delivered its last beat; the memory
// pipelines bursts: first beat at max(AR + kReadGap, previous burst's last beat + 1); the next job
// is accepted from the cycle after the last AR. One instance lives through a whole kernel run.
struct ReadMaster {
  std::deque<int64_t> ends;  // last-beat cycles of the latest kOutstanding bursts
  int64_t ready = 0, last_end = -1;

  // Returns the handshake cycle; `end` = cycle of the job's last beat on R.
  int64_t job(int64_t want, uint64_t addr, int64_t beats, int64_t &end) {
    const int64_t bpb = 2 * kLanes;
    const int64_t h = max64(want, ready);
    int64_t a = h;
  JOB_BURSTS:
    while (beats > 0) {
      // >= 1: in emulation sim may sit off a bus word (the RTL refuses that); count it as aligned
      int64_t page_left = static_cast<int64_t>((4096 - (addr & 4095)) / bpb);
      if (page_left < 1) page_left = 1;
      int64_t b = beats < kMaxBurst ? beats : kMaxBurst;
      if (page_left < b) b = page_left;
      a += 1;
      if (ends.size() == kOutstanding) {
        a = max64(a, ends.front() + 1);
        ends.pop_front();
      }
      last_end = max64(a + kReadGap, last_end + 1) + b - 1;
      ends.push_back(last_end);
      addr += static_cast<uint64_t>(b * bpb);
      beats -= b;
    }
    ready = a + 1;
    end = last_end;
    return h;
  }
};

// One class (or part): its greedy steps and weight pass, results to out_*, the schedule replayed
// from cycle g (the cycle before CLEAR: CHECK, or a part's S_P_GO, where fl_draws starts);
// wr_free carries the write master's state in and out. Returns the cycle of the state after the
// weight pass (S_FINISH or S_P_NEXT), as schedule.py _replay.
int64_t run_class(const uint16_t *sim, int64_t n, int64_t k, int64_t ld, uint32_t *out_ids, uint64_t *out_gains,
                  uint32_t *out_weights, bool stoch, uint32_t seed, uint32_t ssize, int64_t g, int64_t &wr_free,
                  ReadMaster &rm) {
  const int64_t beats = (n + kLanes - 1) / kLanes;
  int64_t tree = 0;
  while ((int64_t{1} << tree) < kLanes) ++tree;
  const int64_t lat = tree + 2;  // last beat -> row result seen: S1 + adder tree + accumulator + 1
  const uint64_t base = reinterpret_cast<uintptr_t>(sim);

  std::vector<uint16_t> cover(static_cast<size_t>(n), 0);
  std::vector<uint8_t> claimed(static_cast<size_t>(n), 0), selected(static_cast<size_t>(n), 0);
  std::vector<int64_t> pos(static_cast<size_t>(n), 0);
  // row job j presented from cycle `want`: returns the handshake cycle, `row` = its row_valid cycle
  auto rd = [&](int64_t want, int64_t j, int64_t &row) {
    int64_t end = 0;
    const int64_t h = rm.job(want, base + static_cast<uint64_t>(j * ld * 2), beats, end);
    row = end + lat;
    return h;
  };

  std::vector<uint32_t> pool(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pool[i] = static_cast<uint32_t>(i);
  int64_t m = n;
  uint32_t state = seed * 0x9E3779B1u + 0x6D2B79F5u;
  if (state == 0) state = 1;

  int64_t c = g + 1 + n;  // CLEAR for n cycles after g (CHECK, or a part's S_P_GO)
  // fl_draws: draw d issues at max(issue(d-1) + 1, take(d - kDrawUnits)), the first in the cycle after g
  std::vector<int64_t> takes;
  int64_t issue = g;
GREEDY_STEPS:
  for (int64_t t = 0; t < k; ++t) {
    int64_t cur = c + 1, last_row = 0;
    uint64_t best_gain = 0;
    int64_t best = -1, best_pos = 0;
    const int64_t cnt = stoch ? (static_cast<int64_t>(ssize) < m ? static_cast<int64_t>(ssize) : m) : 0;
  SAMPLE_CANDIDATES:
    for (int64_t r = 0; r < cnt; ++r) {
      state = xorshift32(state);
      const int64_t p = r + static_cast<int64_t>(state % static_cast<uint32_t>(m - r));
      const uint32_t tmp = pool[r];
      pool[r] = pool[p];
      pool[p] = tmp;
      const int64_t j = pool[r];
      const size_t nd = takes.size();  // this draw's index in the class
      issue = max64(issue + 1, nd >= kDrawUnits ? takes[nd - kDrawUnits] : 0);
      const int64_t took = max64(cur, issue + kDrawCycles);  // swap stage takes the remainder
      takes.push_back(took);
      const int64_t h = rd(took + 4, j, last_row);
      cur = h + 1;
      const uint16_t *row = sim + j * ld;
      uint64_t gain = 0;
    SAMPLE_ROW_ELEMENTS:
      for (int64_t i = 0; i < n; ++i)
        if (row[i] > cover[i]) gain += static_cast<uint64_t>(row[i] - cover[i]);
      if (best < 0 || gain > best_gain || (gain == best_gain && j < best)) {  // ties: lowest index
        best = j;
        best_gain = gain;
        best_pos = r;
      }
    }
  SCAN_CANDIDATES:
    for (int64_t j = 0; j < (stoch ? 0 : n); ++j) {
      if (selected[j]) {
        cur += 2;
        continue;
      }
      const int64_t h = rd(cur + 2, j, last_row);
      cur = h + 1;
      const uint16_t *row = sim + j * ld;
      uint64_t gain = 0;
    ROW_ELEMENTS:
      for (int64_t i = 0; i < n; ++i)
        if (row[i] > cover[i]) gain += static_cast<uint64_t>(row[i] - cover[i]);
      if (best < 0 || gain > best_gain) {  // ascending j: strict > keeps the lowest index on ties
        best = j;
        best_gain = gain;
      }
    }
    if (best < 0) return cur;  // unreachable: k <= n leaves an unselected candidate every step
    out_ids[t] = static_cast<uint32_t>(best);
    out_gains[t] = best_gain;
    selected[best] = 1;
    pos[best] = t;
    if (stoch) {  // remove the pick from the pool
      pool[best_pos] = pool[m - 1];
      pool[m - 1] = static_cast<uint32_t>(best);
      --m;
    }
    const uint16_t *row = sim + best * ld;
  COVER_UPDATE:
    for (int64_t i = 0; i < n; ++i)
      if (row[i] > cover[i]) cover[i] = row[i];
    // three result words, then the update row through the datapath
    int64_t h_w = max64(max64(cur, last_row + 1) + 1, wr_free);
    h_w += 2 * (1 + kWriteBusy);
    wr_free = h_w + 1 + kWriteBusy;
    int64_t upd = 0;
    rd(h_w + 2, best, upd);  // SEL_SET, UPD_ISSUE, then UPD_WAIT until its row_valid
    c = upd + 1;
  }
  int64_t cur = c;
WEIGHT_ROWS:
  for (int64_t j = 0; j < n; ++j) {
    if (!selected[j]) {
      cur += 2;
      continue;
    }
    const uint16_t *row = sim + j * ld;
    uint32_t count = 0;
  WEIGHT_ELEMENTS:
    for (int64_t i = 0; i < n; ++i)
      if (!claimed[i] && row[i] == cover[i]) {
        claimed[i] = 1;
        ++count;
      }
    out_weights[pos[j]] = count;
    int64_t r = 0;
    rd(cur + 2, j, r);
    const int64_t h_w = max64(r + 1, wr_free);
    wr_free = h_w + 1 + kWriteBusy;
    cur = h_w + 1;
  }
  return cur;
}

}  // namespace

extern "C" void nessa_fl_rtl(const uint16_t *sim, int n_arg, int k_arg, int ld_arg, uint32_t *out_ids,
                             uint64_t *out_gains, uint32_t *out_weights, uint64_t *out_stats, int mode_arg,
                             int seed_arg, int sample_size_arg, int parts_arg, const uint32_t *parts_ptr) {
  // Argument checks exactly as fl_engine.v compares them (unsigned 32-bit registers).
  const uint32_t un = static_cast<uint32_t>(n_arg), uk = static_cast<uint32_t>(k_arg);
  const uint32_t uld = static_cast<uint32_t>(ld_arg), uparts = static_cast<uint32_t>(parts_arg);
  const bool pmode = uparts != 0;
  uint64_t status = 0;
  if (!pmode && (un == 0 || un > kNMax)) status |= 1u << 0;
  if (!pmode && (uk == 0 || uk > un)) status |= 1u << 1;
  if ((!pmode && uld < un) || uld % kLanes != 0 || uld >= (1u << 24) || uld == 0) status |= 1u << 2;
  // element alignment here (the RTL needs bus words; host memory in emulation is only element-aligned)
  if (reinterpret_cast<uintptr_t>(sim) % 2 != 0 || (pmode && reinterpret_cast<uintptr_t>(parts_ptr) % 4 != 0))
    status |= 1u << 3;
  const bool stats_ok = reinterpret_cast<uintptr_t>(out_stats) % 4 == 0;
  if (reinterpret_cast<uintptr_t>(out_ids) % 4 || reinterpret_cast<uintptr_t>(out_gains) % 4 ||
      reinterpret_cast<uintptr_t>(out_weights) % 4 || !stats_ok)
    status |= 1u << 4;
  const uint32_t umode = static_cast<uint32_t>(mode_arg), ussize = static_cast<uint32_t>(sample_size_arg);
  if (umode > 2) status |= 1u << 5;
  if (!pmode && umode == 1 && ussize == 0) status |= 1u << 6;
  if (status != 0) {
    if (stats_ok) {
      out_stats[0] = status;
      out_stats[1] = 3;  // CHECK, FINISH, counted as the RTL counts them
    }
    return;
  }
  const bool stoch = umode == 1;
  int64_t wr_free = 0;
  ReadMaster rm;
  if (!pmode) {
    const int64_t end = run_class(sim, un, uk, uld, out_ids, out_gains, out_weights, stoch,
                                  static_cast<uint32_t>(seed_arg), ussize, 0, wr_free, rm);
    out_stats[0] = 0;
    out_stats[1] = static_cast<uint64_t>(max64(end, wr_free) + 2);
    return;
  }
  // parts: fetch (one DESC_BEATS-beat row job), check, run each part; see fl_engine.v S_P_*
  int64_t tree = 0;
  while ((int64_t{1} << tree) < kLanes) ++tree;
  const int64_t lat = tree + 1, desc_beats = kLanes >= 8 ? 1 : 8 / kLanes;  // DESC_BEATS, one 4 KiB page
  int64_t cur = 1;  // S_P_FETCH in the cycle after CHECK
PARTS:
  for (uint32_t i = 0; i < uparts; ++i) {
    const uint32_t *d = parts_ptr + 4 * static_cast<size_t>(i);
    const uint32_t pn = d[0], pk = d[1], pseed = d[2], pss = d[3];
    int64_t e = 0;
    rm.job(cur + 1, 0, desc_beats, e);               // S_P_ISSUE: the read master is idle here
    const int64_t g = e + 1 + lat + 2;               // S_P_WAIT sees row_valid, then S_P_LOAD, S_P_GO
    if (pn == 0 || pn > kNMax || pn > uld || pk == 0 || pk > pn || (stoch && pss == 0)) {
      out_stats[0] = 1u << 7;
      out_stats[1] = static_cast<uint64_t>(max64(g + 1, wr_free) + 2);
      return;
    }
    const int64_t end = run_class(sim, pn, pk, uld, out_ids, out_gains, out_weights, stoch, pseed, pss, g, wr_free, rm);
    sim += static_cast<size_t>(pn) * uld;
    out_ids += pk;
    out_gains += pk;
    out_weights += pk;
    if (i + 1 == uparts) {
      out_stats[0] = 0;
      out_stats[1] = static_cast<uint64_t>(max64(end, wr_free) + 2);
      return;
    }
    cur = end + 2;  // S_P_NEXT, S_P_ADV, then S_P_FETCH
  }
}

// Argument names and kinds for the emulator's kernel table (host/device/emu.py).
extern "C" const char *nessa_fl_rtl__signature(void) {
  return "sim:ptr,n:i32,k:i32,ld:i32,out_ids:ptr,out_gains:ptr,out_weights:ptr,out_stats:ptr,mode:i32,seed:i32,"
         "sample_size:i32,parts:i32,parts_ptr:ptr";
}
