// nessa_greedy.cpp -- greedy facility location for one class, next to the data (Vitis HLS).
//
// Specification: host/golden/greedy.py (exact), host/golden/stochastic.py (stochastic),
// host/golden/similarity.py (fixed-point features -> integer similarity). Bit-exact.
//
// Argument contract (all pointers on bundle gmem = the SmartSSD's single DDR bank; scalars are
// 32-bit ints on s_axilite, as pyxrt passes them):
//   feats       in   int16 [n][d]   Q1.14 features (row-major)
//   sim         out  uint16 [n][n]  scratch: similarity rows (device_only buffer, 2*n*n bytes)
//   out_ids     out  uint32 [k]     class-local ids in selection order
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
// Dataflow sketch:
//   phase 1 (per block of BLK candidate rows held on chip, DATAFLOW):
//     feats --m_axi--> [read_feats, 8 columns/beat] --stream--> [BLK x DVEC distance lanes + isqrt]
//       --stream--> [write_tiles, 32 similarities/beat] --m_axi--> sim
//       [DIST_COLS] II = 1 with [DIST_LANES] x [DIST_VEC] unrolled: 64 rows x 8 columns = 512
//       squared differences per cycle (512 DSPs; include/nessa_pe.h has the budget; unsynthesised);
//       a row costs max(ceil(d / 8), 2) cycles (2 = the 64 similarities' two write beats)
//       (the matrix is symmetric, so row i of the block's columns is one BLK-wide burst;
//        row sums = the exact first-step gains come out for free)
//   phase 2 (greedy): sim row j --m_axi burst--> gain PE (cover[] on chip) --> argmax (ties: lowest j)
//       exact: lazy re-evaluation of stale upper bounds ub[] (gains only shrink, so the pick is
//       the naive pick); stochastic: xorshift32 partial Fisher-Yates sample of the pool.
//   phase 3: selected rows in ascending id --> best[]/arg[] on chip --> weights.
#include <cstdint>

#include "nessa_fixed.h"
#include "nessa_hls_compat.h"
#include "nessa_pe.h"

#define NESSA_GREEDY_NMAX 32768
#define NESSA_GREEDY_MAX_DIM 4096
#define NESSA_GREEDY_BLK 64
#define NESSA_GREEDY_WBEAT 32  // uint16 similarities per 512-bit write beat

namespace {

struct SimTile {
  uint16_t v[NESSA_GREEDY_BLK];
};

// NESSA_GREEDY_DVEC features of one row per stream word (a 128-bit slice of the 512-bit bus);
// columns past d are 0 in both operands, so they add 0 to every squared distance.
struct FeatVec {
  int16_t v[NESSA_GREEDY_DVEC];
};

void read_feats(const int16_t *feats, int n, int d, hls::stream<FeatVec> &fs) {
READ_ROWS:
  for (int i = 0; i < n; ++i) {
  READ_COLS:
    for (int c0 = 0; c0 < d; c0 += NESSA_GREEDY_DVEC) {
#pragma HLS PIPELINE II = 1
      FeatVec f;
    READ_VEC:
      for (int u = 0; u < NESSA_GREEDY_DVEC; ++u) {
#pragma HLS UNROLL
        f.v[u] = c0 + u < d ? feats[static_cast<int64_t>(i) * d + c0 + u] : 0;
      }
      fs.write(f);
    }
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
#pragma HLS PIPELINE II = 1
    const FeatVec f = fs.read();
  DIST_LANES:
    for (int b = 0; b < NESSA_GREEDY_BLK; ++b) {
#pragma HLS UNROLL
      uint64_t s = 0;
    DIST_VEC:
      for (int u = 0; u < NESSA_GREEDY_DVEC; ++u) {
#pragma HLS UNROLL
        const int64_t diff = static_cast<int64_t>(f.v[u]) - blk[b][c0 + u];
        s += static_cast<uint64_t>(diff * diff);
      }
      d2[b] += s;
    }
  }
}

void distance_lanes(hls::stream<FeatVec> &fs, const int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM], int nb,
                    int n, int d, int maxd_q, uint64_t *rowsum, hls::stream<SimTile> &ts) {
DIST_ROWS:
  for (int i = 0; i < n; ++i) {
    uint64_t d2[NESSA_GREEDY_BLK];
#pragma HLS ARRAY_PARTITION variable = d2 complete
    row_d2(fs, blk, d, d2);
    SimTile t;
  DIST_SIM:
    for (int b = 0; b < NESSA_GREEDY_BLK; ++b) {
#pragma HLS UNROLL
      const uint32_t dist = nessa::isqrt64(d2[b]);
      const uint16_t s = dist < static_cast<uint32_t>(maxd_q) ? static_cast<uint16_t>(maxd_q - dist) : 0;
      t.v[b] = b < nb ? s : 0;
      if (b < nb) rowsum[b] += s;
    }
    ts.write(t);
  }
}

// Largest squared distance of block rows vs all rows (only for maxd_q == 0).
uint64_t block_max_d2(hls::stream<FeatVec> &fs, const int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM], int nb,
                      int n, int d) {
  uint64_t mx = 0;
MAXD_ROWS:
  for (int i = 0; i < n; ++i) {
    uint64_t d2[NESSA_GREEDY_BLK];
#pragma HLS ARRAY_PARTITION variable = d2 complete
    row_d2(fs, blk, d, d2);
  MAXD_REDUCE:
    for (int b = 0; b < nb; ++b) mx = d2[b] > mx ? d2[b] : mx;
  }
  return mx;
}

// Block rows on chip, zero-padded to a multiple of NESSA_GREEDY_DVEC columns.
void load_block(const int16_t *feats, int j0, int nb, int d, int16_t blk[NESSA_GREEDY_BLK][NESSA_GREEDY_MAX_DIM]) {
  const int dpad = (d + NESSA_GREEDY_DVEC - 1) / NESSA_GREEDY_DVEC * NESSA_GREEDY_DVEC;
LOAD_BLOCK:
  for (int b = 0; b < nb; ++b)
    for (int c = 0; c < dpad; ++c) {
#pragma HLS PIPELINE II = 1
      blk[b][c] = c < d ? feats[static_cast<int64_t>(j0 + b) * d + c] : 0;
    }
}

void write_tiles(hls::stream<SimTile> &ts, uint16_t *sim, int n, int j0, int nb) {
WRITE_ROWS:
  for (int i = 0; i < n; ++i) {
    const SimTile t = ts.read();
  WRITE_BEATS:
    for (int b0 = 0; b0 < nb; b0 += NESSA_GREEDY_WBEAT) {
#pragma HLS PIPELINE II = 1
    WRITE_BURST:
      for (int b = b0; b < b0 + NESSA_GREEDY_WBEAT; ++b) {
#pragma HLS UNROLL
        if (b < nb) sim[static_cast<int64_t>(i) * n + j0 + b] = t.v[b];  // sim[i][j] == sim[j][i]
      }
    }
  }
}

// gain(j) = sum_i max(0, sim[j][i] - cover[i]) over one row burst.
uint64_t row_gain(const uint16_t *sim, int j, int n, const uint16_t *cover) {
  uint64_t g = 0;
GAIN_ROW:
  for (int i = 0; i < n; ++i) {
#pragma HLS PIPELINE II = 1
    const int32_t s = sim[static_cast<int64_t>(j) * n + i];
    const int32_t c = cover[i];
    g += s > c ? static_cast<uint64_t>(s - c) : 0;
  }
  return g;
}

}  // namespace

extern "C" void nessa_greedy(const int16_t *feats, uint16_t *sim, uint32_t *out_ids, uint32_t *out_weights,
                             uint64_t *out_gains, uint64_t *out_stats, int n, int d, int k, int maxd_q, int mode,
                             int seed, int sample_size) {
#pragma HLS INTERFACE m_axi port = feats offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = sim offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out_ids offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out_weights offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out_gains offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = out_stats offset = slave bundle = gmem
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
  static uint32_t fresh[NESSA_GREEDY_NMAX];  // step stamp (t + 1) of the last exact evaluation
  static uint8_t selected[NESSA_GREEDY_NMAX];
  static uint32_t pool[NESSA_GREEDY_NMAX];
  static uint16_t best[NESSA_GREEDY_NMAX];
  static uint32_t arg[NESSA_GREEDY_NMAX];
  static uint32_t count[NESSA_GREEDY_NMAX];
#pragma HLS BIND_STORAGE variable = ub type = ram_2p impl = uram
#pragma HLS ARRAY_PARTITION variable = blk dim = 1 complete
#pragma HLS ARRAY_RESHAPE variable = blk dim = 2 cyclic factor = NESSA_GREEDY_DVEC

  uint64_t status = 0;
  if (n < 1 || n > NESSA_GREEDY_NMAX) status = 1;
  else if (d < 1 || d > NESSA_GREEDY_MAX_DIM) status = 2;
  else if (k < 1 || k > n) status = 3;
  else if (maxd_q < 0 || maxd_q > 65535) status = 4;
  else if (mode < 0 || mode > 2) status = 5;
  else if (mode == 1 && sample_size < 1) status = 6;
  // ---- phase 0 (maxd_q == 0 only): the class's largest pairwise distance ----
  if (status == 0 && maxd_q == 0) {
    uint64_t mx = 0;
  MAXD_BLOCKS:
    for (int j0 = 0; j0 < n; j0 += NESSA_GREEDY_BLK) {
      const int nb = (n - j0) < NESSA_GREEDY_BLK ? (n - j0) : NESSA_GREEDY_BLK;
      load_block(feats, j0, nb, d, blk);
      hls::stream<FeatVec> fs("feats_maxd");
      read_feats(feats, n, d, fs);
      const uint64_t m = block_max_d2(fs, blk, nb, n, d);
      mx = m > mx ? m : mx;
    }
    const uint32_t dmax = nessa::isqrt64(mx);
    if (dmax > 65535) status = 4;
    maxd_q = dmax == 0 ? 1 : static_cast<int>(dmax);  // all members identical: any bound works
  }
  out_stats[4] = static_cast<uint64_t>(maxd_q);
  if (status != 0) {
    out_stats[0] = 0;
    out_stats[1] = 0;
    out_stats[2] = 0;
    out_stats[3] = status;
    return;
  }

  // ---- phase 1: similarity rows into DDR, row sums (= exact gains of step 0) on chip ----
SIM_BLOCKS:
  for (int j0 = 0; j0 < n; j0 += NESSA_GREEDY_BLK) {
    const int nb = (n - j0) < NESSA_GREEDY_BLK ? (n - j0) : NESSA_GREEDY_BLK;
    load_block(feats, j0, nb, d, blk);
    uint64_t rowsum[NESSA_GREEDY_BLK];
  ROWSUM_INIT:
    for (int b = 0; b < NESSA_GREEDY_BLK; ++b) rowsum[b] = 0;
    {
#pragma HLS DATAFLOW
      hls::stream<FeatVec> fs("feats");
      hls::stream<SimTile> ts("tiles");
      read_feats(feats, n, d, fs);
      distance_lanes(fs, blk, nb, n, d, maxd_q, rowsum, ts);
      write_tiles(ts, sim, n, j0, nb);
    }
  ROWSUM_STORE:
    for (int b = 0; b < nb; ++b) ub[j0 + b] = rowsum[b];
  }

INIT_STATE:
  for (int i = 0; i < n; ++i) {
    cover[i] = 0;
    fresh[i] = 1;  // the row sums are exact for step 0
    selected[i] = 0;
    pool[i] = static_cast<uint32_t>(i);
  }
  uint64_t evals = static_cast<uint64_t>(n), rows_read = 0, objective = 0;
  uint32_t state = nessa::seed_state(static_cast<uint32_t>(seed));
  int m = n;

  // ---- phase 2: greedy steps ----
STEPS:
  for (int t = 0; t < k; ++t) {
    int jbest = -1;
    uint64_t gbest = 0;
    if (mode == 1) {
      const int cnt = sample_size < m ? sample_size : m;
    SAMPLE:
      for (int r = 0; r < cnt; ++r) {
        state = nessa::xorshift32(state);
        const int p = r + static_cast<int>(state % static_cast<uint32_t>(m - r));
        const uint32_t tmp = pool[r];
        pool[r] = pool[p];
        pool[p] = tmp;
      }
    EVAL_SAMPLE:
      for (int r = 0; r < cnt; ++r) {
        const int j = static_cast<int>(pool[r]);
        const uint64_t g = row_gain(sim, j, n, cover);
        ++evals;
        ++rows_read;
        if (jbest < 0 || g > gbest || (g == gbest && j < jbest)) {
          jbest = j;
          gbest = g;
        }
      }
    REMOVE_PICK:
      for (int r = 0; r < cnt; ++r) {
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
        if (selected[j]) continue;
        const uint64_t g = row_gain(sim, j, n, cover);
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
#pragma HLS PIPELINE II = 1
          if (!selected[j] && (jc < 0 || ub[j] > uc)) {
            jc = j;
            uc = ub[j];
          }
        }
        if (fresh[jc] == static_cast<uint32_t>(t + 1)) {
          jbest = jc;
          gbest = uc;
          break;
        }
        ub[jc] = row_gain(sim, jc, n, cover);
        fresh[jc] = static_cast<uint32_t>(t + 1);
        ++evals;
        ++rows_read;
      }
    }
    selected[jbest] = 1;
    out_ids[t] = static_cast<uint32_t>(jbest);
    out_gains[t] = gbest;
    objective += gbest;
    ++rows_read;
  COVER_UPDATE:
    for (int i = 0; i < n; ++i) {
#pragma HLS PIPELINE II = 1
      const uint16_t s = sim[static_cast<int64_t>(jbest) * n + i];
      if (s > cover[i]) cover[i] = s;
    }
  }

  // ---- phase 3: weights (most similar selected element, ties to the lowest id) ----
ASSIGN_INIT:
  for (int i = 0; i < n; ++i) {
    best[i] = 0;
    arg[i] = 0xFFFFFFFFu;
    count[i] = 0;
  }
ASSIGN_ROWS:
  for (int j = 0; j < n; ++j) {
    if (!selected[j]) continue;
    ++rows_read;
  ASSIGN_COLS:
    for (int i = 0; i < n; ++i) {
#pragma HLS PIPELINE II = 1
      const uint16_t s = sim[static_cast<int64_t>(j) * n + i];
      if (arg[i] == 0xFFFFFFFFu || s > best[i]) {
        best[i] = s;
        arg[i] = static_cast<uint32_t>(j);
      }
    }
  }
COUNT:
  for (int i = 0; i < n; ++i) ++count[arg[i]];
WRITE_WEIGHTS:
  for (int t = 0; t < k; ++t) out_weights[t] = count[out_ids[t]];
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
#endif
