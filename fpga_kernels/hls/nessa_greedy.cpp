// nessa_greedy.cpp -- greedy facility location for one class, next to the data (Vitis HLS).
//
// Specification: host/golden/greedy.py (exact), host/golden/stochastic.py (stochastic),
// host/golden/similarity.py (fixed-point features -> integer similarity). Bit-exact.
//
// Argument contract (pointers are 4 KiB-aligned XRT buffers in the SmartSSD's single DDR bank;
// scalars are 32-bit ints on s_axilite, as pyxrt passes them):
//   feats       in   int16 [n][d]   Q1.14 features (row-major, packed), read as 512-bit words
//                                   (bundle gmem; the last word may cover up to 62 bytes past
//                                   the array -- same 4 KiB page, never written)
//   sim         out  uint16 [n][ld] scratch: similarity rows, ld = ceil(n / 32) * 32 (each row
//                                   starts on a 512-bit word; columns n..ld-1 are 0); device_only
//                                   buffer of 2*n*ld bytes (bundle gmem, 512-bit)
//   out_ids     out  uint32 [k]     class-local ids in selection order        (bundle gmem1)
//   out_weights out  uint32 [k]     members whose most similar selected element is that id
//   out_gains   out  uint64 [k]     marginal gain of each pick
//   out_stats   out  uint64 [5]     objective, gain evaluations, similarity rows read, status,
//                                   the maxd_q used
//   n (1..NMAX), d (1..MAX_DIM), k (1..n), maxd_q (1..65535, or 0: the class's largest pairwise
//   distance isqrt(max d2), the CRAIG convention; one extra pass over the pairs),
//   mode (0 exact lazy-equivalent, 1 stochastic, 2 naive), seed, sample_size (>= 1, mode 1)
//   status: 0 ok; 1 bad n, 2 bad d, 3 bad k, 4 bad maxd_q (or largest distance > 65535), 5 bad mode,
//   6 bad sample_size.
//
// Dataflow sketch (include/nessa_pe.h: parallelism; bench/hls_estimates.py: resources and II):
//   phase 0 (maxd_q == 0 only), per block of BLK = 64 rows held on chip: block_pass in its max
//     mode -- [read_feats] --> [distance_lanes] keeps the block's largest d2, sqrt and write
//     see no rows (max of squared distances = square of the max distance: one isqrt64 per
//     class, after the pass; the same 512 lanes as phase 1, one call site).
//   phase 1, per block, block_pass (DATAFLOW):
//     feats --512b--> [read_feats] --FeatVec--> [distance_lanes: 64 rows x 8 columns = 512
//       squared differences / cycle, [DIST_COLS] II = 1] --D2Beat(32 x 32b) x 2 per row-->
//       [sqrt_sim: 32 multiplier-free pipelined isqrt units, II = 1, row sums] --SimBeat(512b)
//       x 2 per row--> [write_tiles] --512b--> sim (row i, columns j0..j0+63: two aligned words)
//     A row costs max(ceil(d / 8), 2) cycles (2 = the two 32-lane beats of sqrt and write).
//     The matrix is symmetric, so column strip j0.. of every row is the block's rows; the row
//     sums are the exact first-step gains.
//   phase 2 (greedy): sim row j --512b burst, 32 lanes/cycle--> gain (cover[] on chip, cyclic 32)
//       --> argmax (ties: lowest j). exact: lazy re-evaluation of stale upper bounds ub[] (gains
//       only shrink, so the pick is the naive pick); stochastic: xorshift32 partial
//       Fisher-Yates sample of the pool.
//   phase 3: selected rows in ascending id, 32 lanes/cycle --> best[]/arg[] on chip --> weights.
#include <cstdint>

#include "nessa_fixed.h"
#include "nessa_hls_compat.h"
#include "nessa_pe.h"

#define NESSA_GREEDY_NMAX 32768
#define NESSA_GREEDY_MAX_DIM 4096
#define NESSA_GREEDY_BLK 64
#define NESSA_GREEDY_WBEAT 32  // uint16 similarities per 512-bit beat (= isqrt units, row lanes)

namespace {

typedef ap_uint<512> word_t;

// NESSA_GREEDY_DVEC features of one row per stream word (128 bits); columns past d are 0 in
// both operands, so they add 0 to every squared distance.
struct FeatVec {
  int16_t v[NESSA_GREEDY_DVEC];
};

// Squared distances of half a block row (32 candidates) clamped to 32 bits: d2 >= 2^32 means
// dist >= 65536 > maxd_q, i.e. similarity 0, and isqrt(2^32 - 1) = 65535 >= maxd_q gives 0 too.
struct D2Beat {
  uint32_t v[NESSA_GREEDY_WBEAT];
};

// Features: one linear burst of 512-bit words re-cut into rows of DVEC-column beats (a 64-lane
// window over two words; each beat takes min(8, d - c0) elements), zero-padded per row.
void read_feats(const word_t *feats, int n, int d, hls::stream<FeatVec> &fs) {
  const int dv = (d + NESSA_GREEDY_DVEC - 1) / NESSA_GREEDY_DVEC;
  const int64_t words = (static_cast<int64_t>(n) * d + NESSA_GREEDY_WBEAT - 1) / NESSA_GREEDY_WBEAT;
  word_t cur = feats[0];
  word_t nxt;
  if (words > 1) nxt = feats[1];
  int64_t widx = 2;
  int pos = 0, c0 = 0;
READ_BEATS:
  for (int64_t t = 0; t < static_cast<int64_t>(n) * dv; ++t) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 262144
#pragma HLS PIPELINE II = 1
    const int m = d - c0 < NESSA_GREEDY_DVEC ? d - c0 : NESSA_GREEDY_DVEC;
    FeatVec f;
  READ_VEC:
    for (int u = 0; u < NESSA_GREEDY_DVEC; ++u) {
#pragma HLS UNROLL
      const int p = pos + u;
      const uint64_t raw = p < NESSA_GREEDY_WBEAT ? nessa_get_lane<16>(cur, p) : nessa_get_lane<16>(nxt, p - NESSA_GREEDY_WBEAT);
      f.v[u] = u < m ? static_cast<int16_t>(raw) : 0;
    }
    fs.write(f);
    pos += m;
    if (pos >= NESSA_GREEDY_WBEAT) {
      pos -= NESSA_GREEDY_WBEAT;
      cur = nxt;
      if (widx < words) nxt = feats[widx++];
    }
    c0 += NESSA_GREEDY_DVEC;
    if (c0 >= d) c0 = 0;
  }
}

// Squared distances of one streamed row to the BLK rows on chip: BLK x DVEC lanes per cycle.
// Unsigned sums of squares are exact in any order.
static inline void row_d2(hls::stream<FeatVec> &fs, const int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM], int d,
                          uint64_t d2[NESSA_GREEDY_BLK]) {
DIST_INIT:
  for (int b = 0; b < NESSA_GREEDY_BLK; ++b) d2[b] = 0;
DIST_COLS:
  for (int c0 = 0; c0 < d; c0 += NESSA_GREEDY_DVEC) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
#pragma HLS PIPELINE II = 1
    const FeatVec f = fs.read();
  DIST_LANES:
    for (int b = 0; b < NESSA_GREEDY_BLK; ++b) {
#pragma HLS UNROLL
      uint64_t s = 0;
    DIST_VEC:
      for (int u = 0; u < NESSA_GREEDY_DVEC; ++u) {
#pragma HLS UNROLL
        const int32_t diff = static_cast<int32_t>(f.v[u]) - blk[b][c0 + u];  // 17 bits signed
        s += static_cast<uint64_t>(static_cast<int64_t>(diff) * diff);         // one 17x17 DSP
      }
      d2[b] += s;
    }
  }
}

// One instance of the 512 lanes serves both passes (one call site: block_pass): the max pass
// (phase 0) keeps the largest d2 of the block's rows and emits nothing.
void distance_lanes(hls::stream<FeatVec> &fs, const int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM], int nb, int n,
                    int d, bool max_pass, hls::stream<D2Beat> &ds, uint64_t &mx_out) {
  uint64_t mx = 0;
DIST_ROWS:
  for (int i = 0; i < n; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
    uint64_t d2[NESSA_GREEDY_BLK];
#pragma HLS ARRAY_PARTITION variable = d2 complete
    row_d2(fs, blk, d, d2);
    if (max_pass) {
    MAXD_REDUCE:
      for (int b = 0; b < NESSA_GREEDY_BLK; ++b) {
#pragma HLS UNROLL
        if (b < nb && d2[b] > mx) mx = d2[b];
      }
      continue;
    }
  DIST_EMIT:
    for (int h = 0; h < NESSA_GREEDY_BLK / NESSA_GREEDY_WBEAT; ++h) {
#pragma HLS PIPELINE II = 1
      D2Beat o;
    DIST_CLAMP:
      for (int u = 0; u < NESSA_GREEDY_WBEAT; ++u) {
#pragma HLS UNROLL
        const uint64_t v = d2[h * NESSA_GREEDY_WBEAT + u];
        o.v[u] = v > 0xFFFFFFFFull ? 0xFFFFFFFFu : static_cast<uint32_t>(v);
      }
      ds.write(o);
    }
  }
  mx_out = mx;
}

// Similarities of one row, 32 isqrt units per beat; row sums of the block's rows.
void sqrt_sim(hls::stream<D2Beat> &ds, int nb, int n, int maxd_q, uint64_t rowsum[NESSA_GREEDY_BLK],
              hls::stream<word_t> &ts) {
SQRT_ROWS:
  for (int i = 0; i < n; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
  SQRT_BEATS:
    for (int h = 0; h < NESSA_GREEDY_BLK / NESSA_GREEDY_WBEAT; ++h) {
#pragma HLS PIPELINE II = 1
      const D2Beat in = ds.read();
      word_t o;
    SQRT_LANES:
      for (int u = 0; u < NESSA_GREEDY_WBEAT; ++u) {
#pragma HLS UNROLL
        const int b = h * NESSA_GREEDY_WBEAT + u;
        const uint32_t dist = nessa::isqrt32(in.v[u]);
        const uint32_t s = b < nb && dist < static_cast<uint32_t>(maxd_q) ? static_cast<uint32_t>(maxd_q) - dist : 0;
        nessa_set_lane<16>(o, u, s);
        rowsum[b] += s;
      }
      ts.write(o);
    }
  }
}

// Row i, columns j0 .. j0 + 63 of the [n][ld] matrix: one or two aligned words (the second only
// when the block has more than 32 rows; its columns past n are the row padding, written 0).
void write_tiles(hls::stream<word_t> &ts, word_t *sim, int n, int ldw, int j0, int nb) {
WRITE_ROWS:
  for (int i = 0; i < n; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
  WRITE_BEATS:
    for (int h = 0; h < NESSA_GREEDY_BLK / NESSA_GREEDY_WBEAT; ++h) {
#pragma HLS PIPELINE II = 1
      const word_t t = ts.read();
      if (h * NESSA_GREEDY_WBEAT < nb) sim[static_cast<int64_t>(i) * ldw + j0 / NESSA_GREEDY_WBEAT + h] = t;  // sim[i][j] == sim[j][i]
    }
  }
}

// Block rows on chip, zero-padded to a multiple of NESSA_GREEDY_DVEC columns (the same gearbox
// as read_feats over rows j0 .. j0 + nb - 1; 64 rows x d columns, once per block).
void load_block(const word_t *feats, int n, int j0, int nb, int d, int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM]) {
  const int64_t e0 = static_cast<int64_t>(j0) * d, e1 = static_cast<int64_t>(j0 + nb) * d;
  const int dpad = (d + NESSA_GREEDY_DVEC - 1) / NESSA_GREEDY_DVEC * NESSA_GREEDY_DVEC;
  int b = 0, c = 0;
LOAD_WORDS:
  for (int64_t w = e0 / NESSA_GREEDY_WBEAT; w * NESSA_GREEDY_WBEAT < e1; ++w) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 8192
    const word_t x = feats[w];
  LOAD_LANES:
    for (int u = 0; u < NESSA_GREEDY_WBEAT; ++u) {
#pragma HLS PIPELINE II = 1
      const int64_t e = w * NESSA_GREEDY_WBEAT + u;
      if (e >= e0 && e < e1) {
        blk[b][c] = static_cast<int16_t>(nessa_get_lane<16>(x, u));
        if (++c == d) {
          c = 0;
          ++b;
        }
      }
    }
  }
LOAD_PAD:
  for (int r = 0; r < nb; ++r)
    for (int cc = d; cc < dpad; ++cc) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = 7
      blk[r][cc] = 0;
    }
  (void)n;
}

// One pass over all rows against the block on chip (DATAFLOW). max_pass: phase 0 (largest d2,
// no similarities: sqrt and write see no rows); else phase 1 (similarity rows, row sums).
void block_pass(const word_t *feats, const int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM], int nb, int n, int d,
                bool max_pass, int maxd_q, uint64_t rowsum[NESSA_GREEDY_BLK], uint64_t &mx, word_t *sim, int ldw, int j0) {
#pragma HLS DATAFLOW
  hls::stream<FeatVec> fs("feats");
  hls::stream<D2Beat> ds("d2");
  hls::stream<word_t> ts("tiles");
  NESSA_STREAM_DEPTH(fs, 16);  // a row's DIST_COLS burst, then 2 emit cycles
  NESSA_STREAM_DEPTH(ds, 4);
  NESSA_STREAM_DEPTH(ts, 4);
  const int sim_rows = max_pass ? 0 : n;
  NESSA_DATAFLOW_BEGIN(max_pass ? "maxd_block" : "sim_block");
  NESSA_PROCESS(read_feats(feats, n, d, fs));
  NESSA_PROCESS(distance_lanes(fs, blk, nb, n, d, max_pass, ds, mx));
  NESSA_PROCESS(sqrt_sim(ds, nb, sim_rows, maxd_q, rowsum, ts));
  NESSA_PROCESS(write_tiles(ts, sim, sim_rows, ldw, j0, nb));
  NESSA_DATAFLOW_END();
}

// gain(j) = sum_i max(0, sim[j][i] - cover[i]): one row burst, 32 lanes per beat.
uint64_t row_gain(const word_t *sim, int j, int ldw, const uint16_t *cover) {
  uint64_t g = 0;
GAIN_ROW:
  for (int w = 0; w < ldw; ++w) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
    const word_t x = sim[static_cast<int64_t>(j) * ldw + w];
    uint32_t part = 0;
  GAIN_LANES:
    for (int u = 0; u < NESSA_GREEDY_WBEAT; ++u) {
#pragma HLS UNROLL
      const int32_t s = static_cast<int32_t>(nessa_get_lane<16>(x, u));
      const int32_t c = cover[w * NESSA_GREEDY_WBEAT + u];  // padded columns: s = 0 adds 0
      part += s > c ? static_cast<uint32_t>(s - c) : 0;
    }
    g += part;
  }
  return g;
}

}  // namespace

extern "C" void nessa_greedy(const word_t *feats, word_t *sim, uint32_t *out_ids, uint32_t *out_weights,
                             uint64_t *out_gains, uint64_t *out_stats, int n, int d, int k, int maxd_q, int mode,
                             int seed, int sample_size) {
#pragma HLS INTERFACE m_axi port = feats offset = slave bundle = gmem max_read_burst_length = 64
#pragma HLS INTERFACE m_axi port = sim offset = slave bundle = gmem max_read_burst_length = 64 max_write_burst_length = 64
#pragma HLS INTERFACE m_axi port = out_ids offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = out_weights offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = out_gains offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = out_stats offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = d
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = maxd_q
#pragma HLS INTERFACE s_axilite port = mode
#pragma HLS INTERFACE s_axilite port = seed
#pragma HLS INTERFACE s_axilite port = sample_size
#pragma HLS INTERFACE s_axilite port = return
  // On-chip state (BRAM / URAM on the card; static so g++ does not put megabytes on the stack).
  static int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM];
  static uint16_t cover[NESSA_GREEDY_NMAX];
  static uint64_t ub[NESSA_GREEDY_NMAX];
  // Narrowest types that hold the values (BRAM is the scarce resource, bench/hls_estimates.py):
  // t + 1 <= k <= NMAX and counts <= n fit 16 bits, ids < NMAX fit 16 bits with 0xFFFF as "none".
  static uint16_t fresh[NESSA_GREEDY_NMAX];  // step stamp (t + 1) of the last exact evaluation
  static bool selected[NESSA_GREEDY_NMAX];
  static uint32_t pool[NESSA_GREEDY_NMAX];
  static uint16_t best[NESSA_GREEDY_NMAX];
  static uint16_t arg[NESSA_GREEDY_NMAX];
  static uint16_t count[NESSA_GREEDY_NMAX];
#pragma HLS BIND_STORAGE variable = ub type = ram_2p impl = uram
#pragma HLS BIND_STORAGE variable = pool type = ram_2p impl = uram
#pragma HLS ARRAY_PARTITION variable = blk dim = 1 complete
#pragma HLS ARRAY_RESHAPE variable = blk dim = 2 cyclic factor = NESSA_GREEDY_DVEC
#pragma HLS ARRAY_PARTITION variable = cover cyclic factor = NESSA_GREEDY_WBEAT
#pragma HLS ARRAY_PARTITION variable = best cyclic factor = NESSA_GREEDY_WBEAT
#pragma HLS ARRAY_PARTITION variable = arg cyclic factor = NESSA_GREEDY_WBEAT

  uint64_t status = 0;
  if (n < 1 || n > NESSA_GREEDY_NMAX) status = 1;
  else if (d < 1 || d > NESSA_GREEDY_MAX_DIM) status = 2;
  else if (k < 1 || k > n) status = 3;
  else if (maxd_q < 0 || maxd_q > 65535) status = 4;
  else if (mode < 0 || mode > 2) status = 5;
  else if (mode == 1 && sample_size < 1) status = 6;
  const int ldw = (n + NESSA_GREEDY_WBEAT - 1) / NESSA_GREEDY_WBEAT;  // sim row stride in words
  // ---- phase 0 (maxd_q == 0 only): the class's largest pairwise distance, then ----
  // ---- phase 1: similarity rows into DDR, row sums (= exact gains of step 0) on chip ----
  // Both passes run through the one block_pass (one set of distance lanes).
  out_stats[4] = static_cast<uint64_t>(maxd_q);
PASSES:
  for (int pass = maxd_q == 0 ? 0 : 1; pass < 2 && status == 0; ++pass) {
    uint64_t mx = 0;
  SIM_BLOCKS:
    for (int j0 = 0; j0 < n; j0 += NESSA_GREEDY_BLK) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
      const int nb = (n - j0) < NESSA_GREEDY_BLK ? (n - j0) : NESSA_GREEDY_BLK;
      load_block(feats, n, j0, nb, d, blk);
      uint64_t rowsum[NESSA_GREEDY_BLK];
#pragma HLS ARRAY_PARTITION variable = rowsum complete
    ROWSUM_INIT:
      for (int b = 0; b < NESSA_GREEDY_BLK; ++b) {
#pragma HLS UNROLL
        rowsum[b] = 0;
      }
      uint64_t m = 0;
      block_pass(feats, blk, nb, n, d, pass == 0, maxd_q, rowsum, m, sim, ldw, j0);
      mx = m > mx ? m : mx;
    ROWSUM_STORE:
      for (int b = 0; b < nb && pass == 1; ++b) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 64
        ub[j0 + b] = rowsum[b];
      }
    }
    if (pass == 0) {
      const uint32_t dmax = nessa::isqrt64(mx);  // max over squared distances: one root per class
      if (dmax > 65535) status = 4;
      maxd_q = dmax == 0 ? 1 : static_cast<int>(dmax);  // all members identical: any bound works
      out_stats[4] = static_cast<uint64_t>(maxd_q);
    }
  }
  if (status != 0) {
    out_stats[0] = 0;
    out_stats[1] = 0;
    out_stats[2] = 0;
    out_stats[3] = status;
    return;
  }

INIT_STATE:
  for (int i = 0; i < ldw * NESSA_GREEDY_WBEAT; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 32 max = 32768
    cover[i] = 0;  // the padded columns too: row words carry 0 there and must add 0
    fresh[i] = 1;  // the row sums are exact for step 0
    selected[i] = false;
    pool[i] = static_cast<uint32_t>(i);
  }
  uint64_t evals = static_cast<uint64_t>(n), rows_read = 0, objective = 0;
  uint32_t state = nessa::seed_state(static_cast<uint32_t>(seed));
  int m = n;

  // ---- phase 2: greedy steps ----
STEPS:
  for (int t = 0; t < k; ++t) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
    int jbest = -1;
    uint64_t gbest = 0;
    if (mode == 1) {
      const int cnt = sample_size < m ? sample_size : m;
    SAMPLE:
      for (int r = 0; r < cnt; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
        state = nessa::xorshift32(state);
        const int p = r + static_cast<int>(state % static_cast<uint32_t>(m - r));
        const uint32_t tmp = pool[r];
        pool[r] = pool[p];
        pool[p] = tmp;
      }
    EVAL_SAMPLE:
      for (int r = 0; r < cnt; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
        const int j = static_cast<int>(pool[r]);
        const uint64_t g = row_gain(sim, j, ldw, cover);
        ++evals;
        ++rows_read;
        if (jbest < 0 || g > gbest || (g == gbest && j < jbest)) {
          jbest = j;
          gbest = g;
        }
      }
    REMOVE_PICK:
      for (int r = 0; r < cnt; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
        if (static_cast<int>(pool[r]) == jbest) {
          pool[r] = pool[m - 1];
          pool[m - 1] = static_cast<uint32_t>(jbest);
          break;
        }
      }
      --m;
    } else if (mode == 2 && t > 0) {
    NAIVE_EVAL:
      for (int j = 0; j < n; ++j) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
        if (selected[j]) continue;
        const uint64_t g = row_gain(sim, j, ldw, cover);
        ++evals;
        ++rows_read;
        if (jbest < 0 || g > gbest) {
          jbest = j;
          gbest = g;
        }
      }
    } else {
    LAZY:
      for (;;) {
        int jc = -1;
        uint64_t uc = 0;
      LAZY_SCAN:
        for (int j = 0; j < n; ++j) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
#pragma HLS PIPELINE II = 1
          if (!selected[j] && (jc < 0 || ub[j] > uc)) {
            jc = j;
            uc = ub[j];
          }
        }
        if (fresh[jc] == static_cast<uint16_t>(t + 1)) {
          jbest = jc;
          gbest = uc;
          break;
        }
        ub[jc] = row_gain(sim, jc, ldw, cover);
        fresh[jc] = static_cast<uint16_t>(t + 1);
        ++evals;
        ++rows_read;
      }
    }
    selected[jbest] = true;
    out_ids[t] = static_cast<uint32_t>(jbest);
    out_gains[t] = gbest;
    objective += gbest;
    ++rows_read;
  COVER_UPDATE:
    for (int w = 0; w < ldw; ++w) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
      const word_t x = sim[static_cast<int64_t>(jbest) * ldw + w];
    COVER_LANES:
      for (int u = 0; u < NESSA_GREEDY_WBEAT; ++u) {
#pragma HLS UNROLL
        const uint16_t s = static_cast<uint16_t>(nessa_get_lane<16>(x, u));
        if (s > cover[w * NESSA_GREEDY_WBEAT + u]) cover[w * NESSA_GREEDY_WBEAT + u] = s;
      }
    }
  }

  // ---- phase 3: weights (most similar selected element, ties to the lowest id) ----
ASSIGN_INIT:
  for (int i = 0; i < ldw * NESSA_GREEDY_WBEAT; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 32 max = 32768
    best[i] = 0;
    arg[i] = 0xFFFF;
    count[i] = 0;
  }
ASSIGN_ROWS:
  for (int j = 0; j < n; ++j) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
    if (!selected[j]) continue;
    ++rows_read;
  ASSIGN_COLS:
    for (int w = 0; w < ldw; ++w) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
      const word_t x = sim[static_cast<int64_t>(j) * ldw + w];
    ASSIGN_LANES:
      for (int u = 0; u < NESSA_GREEDY_WBEAT; ++u) {
#pragma HLS UNROLL
        const int i = w * NESSA_GREEDY_WBEAT + u;
        const uint16_t s = static_cast<uint16_t>(nessa_get_lane<16>(x, u));
        if (arg[i] == 0xFFFF || s > best[i]) {
          best[i] = s;
          arg[i] = static_cast<uint16_t>(j);
        }
      }
    }
  }
COUNT:
  for (int i = 0; i < n; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
    ++count[arg[i]];
  }
WRITE_WEIGHTS:
  for (int t = 0; t < k; ++t) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
    out_weights[t] = count[out_ids[t]];
  }
  out_stats[0] = objective;
  out_stats[1] = evals;
  out_stats[2] = rows_read;
  out_stats[3] = 0;
}

#ifndef __SYNTHESIS__
// Argument kinds for the x86 emulator (host/device/emu.py); the xclbin carries this on a card.
extern "C" const char *nessa_greedy__signature(void) {
  return "feats:ptr,sim:ptr,out_ids:ptr,out_weights:ptr,out_gains:ptr,out_stats:ptr,"
         "n:i32,d:i32,k:i32,maxd_q:i32,mode:i32,seed:i32,sample_size:i32";
}
// The synthesised square roots, exported for tests/device/test_hls_streams.py (not a kernel:
// no __signature, so the emulator does not list it).
extern "C" uint32_t nessa_greedy__isqrt32(uint32_t x) { return nessa::isqrt32(x); }
extern "C" uint32_t nessa_greedy__isqrt64(uint64_t x) { return nessa::isqrt64(x); }
#endif
