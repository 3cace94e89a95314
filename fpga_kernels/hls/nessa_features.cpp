// nessa_features.cpp -- int8 quantized forward + fixed-point softmax - onehot (Vitis HLS).
//
// Specification: host/golden/qforward.py (ops, requantisation, rounding, saturation) and
// host/golden/softmax.py (exp approximation, probabilities). Layer program format:
// host/quantize/format.py. Bit-exact with the golden model.
//
// Argument contract (pointers are 4 KiB-aligned XRT buffers in the single DDR bank; scalars
// 32-bit ints). Bundles: gmem is 512 bits wide (weights), gmem1 carries the narrow ports (Vitis
// bursts only ports of one width per bundle):
//   samples   in   uint8 [n][in_c*in_h*in_w] from byte in_offset (layout CHW or HWC, see program)
//                  -- on a SmartSSD this buffer is a p2p bo filled straight from the NVMe drive
//   labels    in   int32 [n]
//   prog      in   int32 [prog_words]  the layer program (header, op records, parameters)
//   weights   in   int8  [weight_bytes] read as 512-bit words, 64 weights per beat (the last word
//                  may cover up to 63 bytes past the array: same 4 KiB page, never written)
//   feats     out  int16 [n][num_classes]   Q1.14 softmax - onehot
//   embed     out  int8  [n][embed_dim]     penultimate embedding (written when flags & 1)
//   stats     out  int32 [4]  status, samples done, ops executed per sample, reserved
//   in_offset, prog_words, n, flags (bit 0: write the embedding)
//   status: 0 ok; 1 bad magic / version, 2 program too large, 3 weights too large,
//           4 slot limits, 5 unknown opcode, 6 bad n, 7 layer shape exceeds the slot size.
//
// Dataflow sketch (per sample; the model stays on chip for the whole batch):
//   prog, weights --m_axi (once)--> on-chip program / weight memories (weights: URAM, 512-bit words)
//   per sample, DATAFLOW (one region per loop iteration; every DDR access inside a process):
//   samples, labels --m_axi--> [load_sample] --pixels (16b, depth 64), label (32b)--> [run_program:
//       conv/linear/pool/add over on-chip activation slots, HEAD -> logits -> exp LUT softmax]
//       --outputs (16b, depth 64: embedding then features)--> [store_row] --m_axi--> feats, embed
//
// Parallelism (constants: include/nessa_pe.h; resources and II per part: bench/hls_estimates.py;
// cycle estimate per layer: host/device/opcounts.py). UNSYNTHESISED -- no Vitis here; the II and
// resource figures are derived from the code, to be confirmed by csynth.
//   conv:   output-stationary PE array NF_TILE_OC (32) output channels x NF_TILE_PX (16) output
//           pixels of one row segment. [CONV_TAPS] is pipelined at II = 1 over the taps
//           (ci, ky, kx); per tap the 32 weights come from the weight tile wtile[][t] (complete
//           partition over the PE rows) and the 16 activations from the two 1024-bit slot words
//           holding the window (one per BRAM port) through a shifter (stride <= 4);
//           [PE_OC] x [PE_PX] unrolled: 512 int8 MACs per cycle into int32 register
//           accumulators. Per 32-channel tile: [WT_ROWS] loads the tile's weights (16 B/cycle),
//           then per row segment [CONV_TAPS] (taps + depth cycles) and [REQUANT_TILE] (one output
//           channel x 16 pixels per 2 cycles: read-modify-write of two slot words).
//           DSP48E2: 512 (one per MAC; WP486 int8 packing would halve it, not claimed);
//           requantisation, linear and residual multipliers are in fabric.
//   linear / head: [LIN_CIN] II = 1, 64 weights (one 512-bit word) x 64 activations per cycle
//           into an adder tree -- weight-bandwidth bound (each weight used once per sample).
//   pools: 16 output pixels per cycle per tap; GAP 64 and ADD 16 elements per cycle.
// Bit-exactness: the golden model saturates only in the requantisation (after the full int32
// sum), so the PE array's accumulation order gives the golden sums bit for bit.
#include <cstdint>

#include "nessa_fixed.h"
#include "nessa_hls_compat.h"
#include "nessa_pe.h"

#define NF_MAX_SLOTS 6
#define NF_MAX_SLOT_ELEMS 65536
#define NF_PROG_MAX 16384  // words: ~5,400 output channels of parameters; 16 BRAM36 (was 64 Ki: 64)
#define NF_WEIGHTS_MAX 1572864  // 1.5 MiB: 24K 512-bit words = 48 URAM (2 MiB took 64 of the ~87 the region has)
#define NF_MAX_CLASSES 1024
#define NF_HEADER 16
#define NF_OPW 16
#define NF_LOGIT_CLAMP (1 << 20)

namespace {

enum { OP_CONV = 1, OP_LINEAR = 2, OP_MAXPOOL = 3, OP_AVGPOOL = 4, OP_GAP = 5, OP_ADD = 6, OP_HEAD = 7 };

typedef ap_uint<512> word_t;

// On-chip memories (partitioning applied in the top function, where HLS sees the globals):
//   slots  reshaped cyclic NF_XBANKS on dim 2: 1024-bit words; every multi-element access is a
//          window of two words (win_load / win_store) or one word; wbuf reshaped into 512-bit words in URAM (NF_LIN_LANES
//          contiguous weights per cycle); wtile complete on dim 1 (the PE rows), reshaped
//          NF_WLOAD_BYTES on dim 2.
int16_t slots[NF_MAX_SLOTS][NF_MAX_SLOT_ELEMS];
int32_t pbuf[NF_PROG_MAX];
int8_t wbuf[NF_WEIGHTS_MAX];

// Reads one sample's pixels (in CHW order) and its label; the label travels with the pixels so
// the dataflow region touches DDR only inside its processes.
void load_sample(const uint8_t *samples, const int32_t *labels, int64_t i, int64_t base, int c, int h, int w,
                 int layout, hls::stream<int16_t> &xs, hls::stream<int32_t> &ls) {
  ls.write(labels[i]);
LOAD_PIXELS:
  for (int ch = 0; ch < c; ++ch)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
        const int64_t off = layout == 1 ? (static_cast<int64_t>(y) * w + x) * c + ch
                                        : (static_cast<int64_t>(ch) * h + y) * w + x;
        xs.write(static_cast<int16_t>(samples[base + off]));
      }
}

// ---- CONV / LINEAR / HEAD ----------------------------------------------------------------
// Integer sums are exact and there is no saturation before the requantisation (the golden
// model saturates only in requant / sat8), so the PE array's accumulation order gives the
// golden int32 sums bit for bit.

// One requantised output (host/golden/qforward.py: _requant; HEAD: the logit clamp). The
// int32 x int32 product is built in LUTs: 16 lanes would take 64 DSPs the PE array needs.
static inline int32_t requant1(int32_t acc, int64_t mult, int shift, int relu) {
  const int64_t prod = static_cast<int64_t>(acc) * static_cast<int32_t>(mult);
#pragma HLS BIND_OP variable = prod op = mul impl = fabric
  int32_t q = nessa::sat8(nessa::rshift_round(prod, shift));
  return relu && q < 0 ? 0 : q;
}

// Weight tile: NF_TILE_OC output channels x NF_WT_TAPS taps, read by the PE array one tap
// (all rows) per cycle, written NF_WLOAD_BYTES per cycle along a row.
int8_t wtile[NF_TILE_OC][NF_WT_TAPS];

void load_wtile(const int8_t *w, int co0, int na, int taps, int t0, int nt) {
WT_ROWS:
  for (int a = 0; a < NF_TILE_OC; ++a) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32
    const int8_t *src = w + static_cast<int64_t>(co0 + a) * taps + t0;
  WT_LOAD:
    for (int t0 = 0; t0 < nt; t0 += NF_WLOAD_BYTES) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
#pragma HLS PIPELINE II = 1
    WT_WORD:
      for (int b = 0; b < NF_WLOAD_BYTES; ++b) {
#pragma HLS UNROLL
        if (t0 + b < nt) wtile[a][t0 + b] = a < na ? src[t0 + b] : 0;  // idle PE rows multiply by 0
      }
    }
  }
}

// LINEAR / HEAD: a dot product per output, NF_LIN_LANES weights + activations per cycle.
void linear_op(int code, const int16_t *x, int16_t *y, const int8_t *w, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, int cin, int cout, int relu, int32_t *logits) {
LIN_COUT:
  for (int co = 0; co < cout; ++co) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
    int32_t acc = bias[co];
    const int8_t *wr = w + static_cast<int64_t>(co) * cin;
  LIN_CIN:
    for (int c0 = 0; c0 < cin; c0 += NF_LIN_LANES) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
      int32_t part = 0;
    LIN_LANE:
      for (int l = 0; l < NF_LIN_LANES; ++l) {
#pragma HLS UNROLL
        const int32_t prod = c0 + l < cin ? static_cast<int32_t>(wr[c0 + l]) * x[c0 + l] : 0;
#pragma HLS BIND_OP variable = prod op = mul impl = fabric
        part += prod;  // int8 x int16 in LUTs: the DSPs go to the conv PE array
      }
      acc += part;
    }
    if (code == OP_HEAD) {
      const int64_t r = nessa::rshift_round(static_cast<int64_t>(acc) * mult[co], shift[co]);
      logits[co] = static_cast<int32_t>(r < -NF_LOGIT_CLAMP ? -NF_LOGIT_CLAMP : (r > NF_LOGIT_CLAMP ? NF_LOGIT_CLAMP : r));
    } else {
      y[co] = static_cast<int16_t>(requant1(acc, mult[co], shift[co], relu));
    }
  }
}

// ---- Slot windows: the slots are 1024-bit words (ARRAY_RESHAPE cyclic NF_XBANKS) ------------
// A row segment's elements e0 + j * st (j < NF_TILE_PX) lie in the two consecutive words that
// hold e0 (st <= 4: off + 15 * st < 128), which the two ports of the slot's BRAMs read in one
// cycle; a 128:16 shifter picks the elements. Dynamic-offset reads of single elements from a
// cyclically partitioned array would instead give every read a 64:1 bank mux and let HLS
// schedule the 16 reads over the banks' 2 ports (II ~ 8).
#define NF_SLOT_WORDS (NF_MAX_SLOT_ELEMS / NF_XBANKS)

// Loads words floor(e0 / 64) and the next into wnd[0..127] (words outside the slot read as 0;
// e0 may be negative: padding); returns e0's position in wnd.
static inline int win_load(const int16_t *slot, int64_t e0, int16_t wnd[2 * NF_XBANKS]) {
  const int64_t wb = (e0 >= 0 ? e0 : e0 - (NF_XBANKS - 1)) / NF_XBANKS;  // floor division
WIN_LOAD:
  for (int h = 0; h < 2; ++h) {
#pragma HLS UNROLL
    const int64_t w = wb + h;
  WIN_LOAD_LANES:
    for (int l = 0; l < NF_XBANKS; ++l) {
#pragma HLS UNROLL
      wnd[h * NF_XBANKS + l] = w >= 0 && w < NF_SLOT_WORDS ? slot[w * NF_XBANKS + l] : 0;
    }
  }
  return static_cast<int>(e0 - wb * NF_XBANKS);
}

// Writes wnd back to the two words win_load read (read-modify-write: II 2 on two ports).
static inline void win_store(int16_t *slot, int64_t e0, const int16_t wnd[2 * NF_XBANKS]) {
  const int64_t wb = (e0 >= 0 ? e0 : e0 - (NF_XBANKS - 1)) / NF_XBANKS;
WIN_STORE:
  for (int h = 0; h < 2; ++h) {
#pragma HLS UNROLL
    const int64_t w = wb + h;
  WIN_STORE_LANES:
    for (int l = 0; l < NF_XBANKS; ++l) {
#pragma HLS UNROLL
      if (w >= 0 && w < NF_SLOT_WORDS) slot[w * NF_XBANKS + l] = wnd[h * NF_XBANKS + l];
    }
  }
}

// The NF_TILE_PX activations of one tap for one row segment: element j is
// x[ci][iy][ix0 + j * st] of the row starting at slot element rowbase, 0 outside the input
// (zero padding; ok[j] says whether it was inside). Strides > 4 fall back to element reads.
static inline void read_window(const int16_t *slot, int64_t rowbase, bool row_ok, int ix0, int st, int win,
                               int32_t xv[NF_TILE_PX], bool ok[NF_TILE_PX]) {
  int16_t wnd[2 * NF_XBANKS];
#pragma HLS ARRAY_PARTITION variable = wnd complete
  const int off = win_load(slot, rowbase + ix0, wnd);
READ_WINDOW:
  for (int j = 0; j < NF_TILE_PX; ++j) {
#pragma HLS UNROLL
    const int ix = ix0 + j * st, p = off + j * st;
    ok[j] = row_ok && ix >= 0 && ix < win;
    xv[j] = !ok[j] ? 0 : (p < 2 * NF_XBANKS ? wnd[p] : slot[rowbase + ix]);
  }
}

void conv_op(const int32_t *op, int32_t *logits) {
  const int code = op[0];
  const int16_t *x = slots[op[1]];
  int16_t *y = slots[op[3]];
  const int cin = op[4], hin = op[5], win = op[6], cout = op[7], hout = op[8], wout = op[9];
  const int kk = op[10], st = op[11], pad = op[12], relu = op[13];
  const int8_t *w = wbuf + op[14];
  const int32_t *bias = pbuf + op[15], *mult = bias + cout, *shift = mult + cout;
  const int plane = hout * wout;
  if (plane == 1 && kk == 1 && hin == 1 && win == 1) {
    linear_op(code, x, y, w, bias, mult, shift, cin, cout, relu, logits);
    return;
  }
  const int taps = cin * kk * kk;
  const int nchunks = (taps + NF_WT_TAPS - 1) / NF_WT_TAPS;
  const int nseg = (wout + NF_TILE_PX - 1) / NF_TILE_PX;
CONV_OC:
  for (int co0 = 0; co0 < cout; co0 += NF_TILE_OC) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32
    const int na = cout - co0 < NF_TILE_OC ? cout - co0 : NF_TILE_OC;
  CONV_SEGS:
    for (int g = 0; g < hout * nseg; ++g) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
      const int oy = g / nseg, ox0 = (g % nseg) * NF_TILE_PX;
      int32_t acc[NF_TILE_OC][NF_TILE_PX];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 0
    ACC_INIT:
      for (int a = 0; a < NF_TILE_OC; ++a)
        for (int j = 0; j < NF_TILE_PX; ++j) acc[a][j] = a < na ? bias[co0 + a] : 0;
    CONV_CHUNKS:
      for (int t0 = 0; t0 < taps; t0 += NF_WT_TAPS) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 16
        const int nt = taps - t0 < NF_WT_TAPS ? taps - t0 : NF_WT_TAPS;
        if (nchunks > 1 || g == 0) load_wtile(w, co0, na, taps, t0, nt);
        // tap counters (ci, ky, kx) of tap t0, stepped without division in the pipeline
        int ci = t0 / (kk * kk), ky = (t0 / kk) % kk, kx = t0 % kk;
      CONV_TAPS:
        for (int t = 0; t < nt; ++t) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
#pragma HLS PIPELINE II = 1
          const int iy = oy * st - pad + ky;
          const bool row_ok = iy >= 0 && iy < hin;
          int32_t xv[NF_TILE_PX];
          bool ok[NF_TILE_PX];
#pragma HLS ARRAY_PARTITION variable = xv complete
#pragma HLS ARRAY_PARTITION variable = ok complete
          read_window(x, (static_cast<int64_t>(ci) * hin + (row_ok ? iy : 0)) * win, row_ok, ox0 * st - pad + kx, st,
                      win, xv, ok);
        PE_OC:
          for (int a = 0; a < NF_TILE_OC; ++a) {
#pragma HLS UNROLL
            const int32_t wv = wtile[a][t];
          PE_PX:
            for (int j = 0; j < NF_TILE_PX; ++j) {
#pragma HLS UNROLL
              acc[a][j] += wv * xv[j];
            }
          }
          if (++kx == kk) {
            kx = 0;
            if (++ky == kk) {
              ky = 0;
              ++ci;
            }
          }
        }
      }
    REQUANT_TILE:  // one output channel's 16 pixels per beat, a read-modify-write of two words
      for (int a = 0; a < na; ++a) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32
#pragma HLS PIPELINE II = 2
        const int co = co0 + a;
        const int64_t e0 = static_cast<int64_t>(co) * plane + oy * wout + ox0;
        int16_t wnd[2 * NF_XBANKS];
#pragma HLS ARRAY_PARTITION variable = wnd complete
        const int off = win_load(y, e0, wnd);
      REQUANT_PX:
        for (int j = 0; j < NF_TILE_PX; ++j) {
#pragma HLS UNROLL
          if (ox0 + j < wout) wnd[off + j] = static_cast<int16_t>(requant1(acc[a][j], mult[co], shift[co], relu));
        }
        win_store(y, e0, wnd);
      }
    }
  }
}

// ---- MAXPOOL / AVGPOOL / GAP -------------------------------------------------------------
void pool_op(const int32_t *op) {
  const int code = op[0];
  const int16_t *x = slots[op[1]];
  int16_t *y = slots[op[3]];
  const int c = op[4], hin = op[5], win = op[6], hout = op[8], wout = op[9];
  if (code == OP_GAP) {  // NF_LIN_LANES contiguous elements per cycle
    const int hw = hin * win;
  GAP_C:
    for (int ch = 0; ch < c; ++ch) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
      int64_t acc = 0;
    GAP_E:
      for (int e0 = 0; e0 < hw; e0 += NF_LIN_LANES) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
        int16_t wnd[2 * NF_XBANKS];
#pragma HLS ARRAY_PARTITION variable = wnd complete
        const int off = win_load(x, static_cast<int64_t>(ch) * hw + e0, wnd);  // 64 elements in two words
        int32_t part = 0;
      GAP_LANE:
        for (int l = 0; l < NF_LIN_LANES; ++l) {
#pragma HLS UNROLL
          if (e0 + l < hw) part += wnd[off + l];
        }
        acc += part;
      }
      y[ch] = static_cast<int16_t>(nessa::div_round32(static_cast<int32_t>(acc), hw));
    }
    return;
  }
  const int kk = op[10], st = op[11], pad = code == OP_MAXPOOL ? op[12] : 0;
  const bool is_max = code == OP_MAXPOOL;
  const int nseg = (wout + NF_TILE_PX - 1) / NF_TILE_PX;
POOL_SEGS:
  for (int g = 0; g < c * hout * nseg; ++g) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
    const int ch = g / (hout * nseg), oy = (g / nseg) % hout, ox0 = (g % nseg) * NF_TILE_PX;
    int32_t acc[NF_TILE_PX];
#pragma HLS ARRAY_PARTITION variable = acc complete
  POOL_INIT:
    for (int j = 0; j < NF_TILE_PX; ++j) acc[j] = is_max ? -(1 << 30) : 0;
  POOL_TAPS:
    for (int t = 0; t < kk * kk; ++t) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 49
#pragma HLS PIPELINE II = 1
      const int ky = t / kk, kx = t % kk;
      const int iy = oy * st - pad + ky;
      const bool row_ok = iy >= 0 && iy < hin;
      int32_t xv[NF_TILE_PX];
      bool ok[NF_TILE_PX];
#pragma HLS ARRAY_PARTITION variable = xv complete
#pragma HLS ARRAY_PARTITION variable = ok complete
      read_window(x, (static_cast<int64_t>(ch) * hin + (row_ok ? iy : 0)) * win, row_ok, ox0 * st - pad + kx, st, win,
                  xv, ok);
    POOL_PX:
      for (int j = 0; j < NF_TILE_PX; ++j) {
#pragma HLS UNROLL
        if (!ok[j]) continue;  // padded taps are ignored
        acc[j] = is_max ? (xv[j] > acc[j] ? xv[j] : acc[j]) : acc[j] + xv[j];
      }
    }
    const int64_t e0 = (static_cast<int64_t>(ch) * hout + oy) * wout + ox0;
    int16_t wnd[2 * NF_XBANKS];
#pragma HLS ARRAY_PARTITION variable = wnd complete
    const int off = win_load(y, e0, wnd);  // read-modify-write of the two words
  POOL_STORE:
    for (int j = 0; j < NF_TILE_PX; ++j) {
#pragma HLS UNROLL
      if (ox0 + j < wout) wnd[off + j] = static_cast<int16_t>(is_max ? acc[j] : nessa::div_round32(acc[j], kk * kk));
    }
    win_store(y, e0, wnd);
  }
}

// ---- ADD (residual) -----------------------------------------------------------------------
void add_op(const int32_t *op) {
  const int16_t *a = slots[op[1]], *b = slots[op[2]];
  int16_t *y = slots[op[3]];
  const int elems = op[7] * op[8] * op[9];
  const int32_t ma = pbuf[op[15]], mb = pbuf[op[15] + 1];  // int16 x int32 products, not x int64
  const int sh = pbuf[op[15] + 2];
ADD_ELEMS:  // 16 elements = a quarter of one 1024-bit word of each slot (16 divides 64)
  for (int e0 = 0; e0 < elems; e0 += NF_TILE_PX) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
#pragma HLS PIPELINE II = 1
    const int64_t w = e0 / NF_XBANKS;
    const int base = e0 % NF_XBANKS;
    int16_t wa[NF_XBANKS], wb[NF_XBANKS], wy[NF_XBANKS];
#pragma HLS ARRAY_PARTITION variable = wa complete
#pragma HLS ARRAY_PARTITION variable = wb complete
#pragma HLS ARRAY_PARTITION variable = wy complete
  ADD_WORDS:
    for (int l = 0; l < NF_XBANKS; ++l) {
#pragma HLS UNROLL
      wa[l] = a[w * NF_XBANKS + l];
      wb[l] = b[w * NF_XBANKS + l];
      wy[l] = y[w * NF_XBANKS + l];
    }
  ADD_LANE:
    for (int l = 0; l < NF_TILE_PX; ++l) {
#pragma HLS UNROLL
      const int e = e0 + l;
      if (e < elems) {
        const int64_t pa = static_cast<int64_t>(wa[base + l]) * ma, pb = static_cast<int64_t>(wb[base + l]) * mb;
#pragma HLS BIND_OP variable = pa op = mul impl = fabric
#pragma HLS BIND_OP variable = pb op = mul impl = fabric
        int32_t q = nessa::sat8(nessa::rshift_round(pa + pb, sh));
        if (op[13] && q < 0) q = 0;
        wy[base + l] = static_cast<int16_t>(q);
      }
    }
  ADD_STORE:
    for (int l = 0; l < NF_XBANKS; ++l) {
#pragma HLS UNROLL
      y[w * NF_XBANKS + l] = wy[l];  // read-modify-write of one word (a, b, y may share a slot)
    }
  }
}

// Writes the classes Q1.14 values of softmax - onehot to the output stream.
void softmax_onehot(const int32_t *logits, int classes, int label, hls::stream<int16_t> &os) {
  int32_t mx = logits[0];
SM_MAX:
  for (int c = 1; c < classes; ++c) mx = logits[c] > mx ? logits[c] : mx;
  int64_t e[NF_MAX_CLASSES];
  int64_t sum = 0;
SM_EXP:
  for (int c = 0; c < classes; ++c) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = 1024
#pragma HLS PIPELINE II = 1
    e[c] = nessa::exp_q(static_cast<int64_t>(logits[c]) - mx);
    sum += e[c];
  }
SM_DIV:
  for (int c = 0; c < classes; ++c) {
    const int64_t p = (e[c] * (int64_t(1) << nessa::PROB_FRAC) + (sum >> 1)) / sum;
    os.write(static_cast<int16_t>(p - (c == label ? (int64_t(1) << nessa::PROB_FRAC) : 0)));
  }
}

// One sample through the program. Output stream (16-bit words, narrow on purpose): the
// embedding (edim words, only when flags & 1, at the HEAD op) then the classes features.
void run_program(hls::stream<int16_t> &xs, hls::stream<int32_t> &ls, int elems, int flags, hls::stream<int16_t> &os) {
  const int n_ops = pbuf[2], classes = pbuf[7], edim = pbuf[8];
  const int label = ls.read();
LOAD_SLOT0:
  for (int e = 0; e < elems; ++e) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
#pragma HLS PIPELINE II = 1
    slots[0][e] = xs.read();
  }
  int32_t logits[NF_MAX_CLASSES];
OPS:
  for (int o = 0; o < n_ops; ++o) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
    const int32_t *op = pbuf + NF_HEADER + o * NF_OPW;
    switch (op[0]) {
      case OP_CONV:
      case OP_LINEAR:
        conv_op(op, logits);
        break;
      case OP_HEAD:
        if (flags & 1) {
        EMB_COPY:
          for (int e = 0; e < edim; ++e) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
#pragma HLS PIPELINE II = 1
            os.write(static_cast<int16_t>(static_cast<int8_t>(slots[op[1]][e])));
          }
        }
        conv_op(op, logits);
        break;
      case OP_MAXPOOL:
      case OP_AVGPOOL:
      case OP_GAP:
        pool_op(op);
        break;
      default:
        add_op(op);
        break;
    }
  }
  softmax_onehot(logits, classes, label, os);
}

void store_row(hls::stream<int16_t> &os, int64_t i, int classes, int edim, int flags, int16_t *feats, int8_t *embed) {
  if (flags & 1) {
  STORE_EMB:
    for (int e = 0; e < edim; ++e) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
#pragma HLS PIPELINE II = 1
      embed[i * edim + e] = static_cast<int8_t>(os.read());
    }
  }
STORE_FEAT:
  for (int c = 0; c < classes; ++c) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = 1024
#pragma HLS PIPELINE II = 1
    feats[i * classes + c] = os.read();
  }
}

int check_program(int prog_words) {
  if (pbuf[0] != 0x314D514E || pbuf[1] != 1) return 1;
  const int n_ops = pbuf[2], slot_elems = pbuf[10];
  if (NF_HEADER + n_ops * NF_OPW > prog_words || pbuf[13] + pbuf[14] != prog_words) return 2;
  if (pbuf[15] > NF_WEIGHTS_MAX || pbuf[15] < 0) return 3;
  if (pbuf[9] < 1 || pbuf[9] > NF_MAX_SLOTS || slot_elems < 1 || slot_elems > NF_MAX_SLOT_ELEMS ||
      pbuf[7] < 1 || pbuf[7] > NF_MAX_CLASSES || pbuf[8] < 1 || pbuf[8] > NF_MAX_SLOT_ELEMS / 16 ||
      pbuf[3] * pbuf[4] * pbuf[5] > slot_elems)
    return 4;
CHECK_OPS:
  for (int o = 0; o < n_ops; ++o) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
    const int32_t *op = pbuf + NF_HEADER + o * NF_OPW;
    if (op[0] < OP_CONV || op[0] > OP_HEAD) return 5;
    if ((o == n_ops - 1) != (op[0] == OP_HEAD)) return 5;
    for (int s = 1; s <= 3; ++s)
      if (op[s] < 0 || op[s] >= pbuf[9]) return 4;
    if (op[0] != OP_HEAD && static_cast<int64_t>(op[7]) * op[8] * op[9] > slot_elems) return 7;
    if (static_cast<int64_t>(op[4]) * op[5] * op[6] > slot_elems) return 7;
    if (op[0] == OP_CONV || op[0] == OP_LINEAR || op[0] == OP_HEAD) {
      const int64_t wb = static_cast<int64_t>(op[7]) * op[4] * op[10] * op[10];
      if (op[14] < 0 || op[14] + wb > pbuf[15] || op[15] < 0 || op[15] + 3 * op[7] > prog_words) return 3;
    }
  }
  return 0;
}

}  // namespace

extern "C" void nessa_features(const uint8_t *samples, const int32_t *labels, const int32_t *prog,
                               const word_t *weights, int16_t *feats, int8_t *embed, int32_t *stats,
                               int in_offset, int prog_words, int n, int flags) {
#pragma HLS INTERFACE m_axi port = weights offset = slave bundle = gmem max_read_burst_length = 64
#pragma HLS INTERFACE m_axi port = samples offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = labels offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = prog offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = feats offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = embed offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = stats offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = in_offset
#pragma HLS INTERFACE s_axilite port = prog_words
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = flags
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS ARRAY_RESHAPE variable = slots cyclic factor = NF_XBANKS dim = 2  // 1024-bit words (slot windows)
#pragma HLS ARRAY_RESHAPE variable = wbuf cyclic factor = NF_LIN_LANES dim = 1
#pragma HLS BIND_STORAGE variable = wbuf type = ram_2p impl = uram
#pragma HLS ARRAY_PARTITION variable = wtile complete dim = 1
#pragma HLS ARRAY_RESHAPE variable = wtile cyclic factor = NF_WLOAD_BYTES dim = 2
  stats[0] = 0;
  stats[1] = 0;
  stats[2] = 0;
  stats[3] = 0;
  if (prog_words < NF_HEADER || prog_words > NF_PROG_MAX) {
    stats[0] = 2;
    return;
  }
  if (n < 0) {
    stats[0] = 6;
    return;
  }
LOAD_PROG:
  for (int i = 0; i < prog_words; ++i) pbuf[i] = prog[i];
  const int status = check_program(prog_words);
  if (status != 0) {
    stats[0] = status;
    return;
  }
LOAD_WEIGHTS:  // 64 weights (one 512-bit beat, one URAM word of wbuf) per cycle
  for (int w = 0; w * NF_LIN_LANES < pbuf[15]; ++w) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
#pragma HLS PIPELINE II = 1
    const word_t x = weights[w];
  LOAD_WLANES:
    for (int l = 0; l < NF_LIN_LANES; ++l) {
#pragma HLS UNROLL
      wbuf[w * NF_LIN_LANES + l] = static_cast<int8_t>(nessa_get_lane<8>(x, l));
    }
  }
  const int c = pbuf[3], h = pbuf[4], w = pbuf[5], layout = pbuf[6], classes = pbuf[7], edim = pbuf[8];
  const int64_t sample_bytes = static_cast<int64_t>(c) * h * w;
SAMPLES:
  for (int i = 0; i < n; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
#pragma HLS DATAFLOW
    hls::stream<int16_t> xs("pixels");
    hls::stream<int32_t> ls("label");
    hls::stream<int16_t> os("outputs");
    NESSA_STREAM_DEPTH(xs, 64);  // one BRAM18 of pixels: load runs ahead of LOAD_SLOT0
    NESSA_STREAM_DEPTH(ls, 2);
    NESSA_STREAM_DEPTH(os, 64);  // store drains while the program computes
    NESSA_DATAFLOW_BEGIN("sample");
    NESSA_PROCESS(load_sample(samples, labels, i, static_cast<int64_t>(in_offset) + i * sample_bytes, c, h, w, layout,
                              xs, ls));
    NESSA_PROCESS(run_program(xs, ls, c * h * w, flags, os));
    NESSA_PROCESS(store_row(os, i, classes, edim, flags, feats, embed));
    NESSA_DATAFLOW_END();
  }
  stats[1] = n;
  stats[2] = pbuf[2];
}

#ifndef __SYNTHESIS__
// Argument kinds for the x86 emulator (host/device/emu.py); the xclbin carries this on a card.
extern "C" const char *nessa_features__signature(void) {
  return "samples:ptr,labels:ptr,prog:ptr,weights:ptr,feats:ptr,embed:ptr,stats:ptr,"
         "in_offset:i32,prog_words:i32,n:i32,flags:i32";
}
#endif
