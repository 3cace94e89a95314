// nessa_features.cpp -- int8 quantized forward + fixed-point softmax - onehot (Vitis HLS).
//
// Specification: host/golden/qforward.py (ops, requantisation, rounding, saturation) and
// host/golden/softmax.py (exp approximation, probabilities). Layer program format:
// host/quantize/format.py. Bit-exact with the golden model.
//
// Argument contract (pointers on bundle gmem, the single DDR bank; scalars 32-bit ints):
//   samples   in   uint8 [n][in_c*in_h*in_w] from byte in_offset (layout CHW or HWC, see program)
//                  -- on a SmartSSD this buffer is a p2p bo filled straight from the NVMe drive
//   labels    in   int32 [n]
//   prog      in   int32 [prog_words]  the layer program (header, op records, parameters)
//   weights   in   int8  [weight_bytes]
//   feats     out  int16 [n][num_classes]   Q1.14 softmax - onehot
//   embed     out  int8  [n][embed_dim]     penultimate embedding (written when flags & 1)
//   stats     out  int32 [4]  status, samples done, ops executed per sample, reserved
//   in_offset, prog_words, n, flags (bit 0: write the embedding)
//   status: 0 ok; 1 bad magic / version, 2 program too large, 3 weights too large,
//           4 slot limits, 5 unknown opcode, 6 bad n, 7 layer shape exceeds the slot size.
//
// Dataflow sketch (per sample; the model stays on chip for the whole batch):
//   prog, weights --m_axi (once)--> on-chip program / weight memories
//   samples --m_axi--> [load_sample] --stream--> [run_program: conv/linear/pool/add over
//       on-chip activation slots, HEAD -> logits -> exp LUT softmax] --stream--> [store] --m_axi--> feats, embed
#include <cstdint>

#include "nessa_fixed.h"
#include "nessa_hls_compat.h"

#define NF_MAX_SLOTS 6
#define NF_MAX_SLOT_ELEMS 65536
#define NF_PROG_MAX 65536
#define NF_WEIGHTS_MAX (1 << 21)
#define NF_MAX_CLASSES 1024
#define NF_HEADER 16
#define NF_OPW 16
#define NF_LOGIT_CLAMP (1 << 20)

namespace {

enum { OP_CONV = 1, OP_LINEAR = 2, OP_MAXPOOL = 3, OP_AVGPOOL = 4, OP_GAP = 5, OP_ADD = 6, OP_HEAD = 7 };

struct OutRow {
  int16_t feat[NF_MAX_CLASSES];
  int8_t emb[NF_MAX_SLOT_ELEMS / 16];
};

int16_t slots[NF_MAX_SLOTS][NF_MAX_SLOT_ELEMS];
int32_t pbuf[NF_PROG_MAX];
int8_t wbuf[NF_WEIGHTS_MAX];

void load_sample(const uint8_t *samples, int64_t base, int c, int h, int w, int layout,
                 hls::stream<int16_t> &xs) {
LOAD_PIXELS:
  for (int ch = 0; ch < c; ++ch)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
#pragma HLS PIPELINE II = 1
        const int64_t off = layout == 1 ? (static_cast<int64_t>(y) * w + x) * c + ch
                                        : (static_cast<int64_t>(ch) * h + y) * w + x;
        xs.write(static_cast<int16_t>(samples[base + off]));
      }
}

// CONV / LINEAR / HEAD. Output-stationary: one output-channel plane of int32 accumulators
// (acc_plane) is updated tap by tap, so the innermost loop runs along a row with II = 1 and no
// bounds tests (the valid ox range of each tap is computed up front). Integer sums are exact,
// so the order of accumulation does not change the result.
int32_t acc_plane[NF_MAX_SLOT_ELEMS];

void requant_store(int code, int relu, int co, int plane, int64_t mult, int shift, int16_t *y, int32_t *logits) {
REQUANT:
  for (int p = 0; p < plane; ++p) {
#pragma HLS PIPELINE II = 1
    const int64_t r = nessa::rshift_round(static_cast<int64_t>(acc_plane[p]) * mult, shift);
    if (code == OP_HEAD) {
      logits[co] = static_cast<int32_t>(r < -NF_LOGIT_CLAMP ? -NF_LOGIT_CLAMP : (r > NF_LOGIT_CLAMP ? NF_LOGIT_CLAMP : r));
    } else {
      int32_t q = nessa::sat8(r);
      if (relu && q < 0) q = 0;
      y[co * plane + p] = static_cast<int16_t>(q);
    }
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
  if (plane == 1 && kk == 1 && hin == 1 && win == 1) {  // LINEAR / HEAD: a dot product per output
  LIN_COUT:
    for (int co = 0; co < cout; ++co) {
      int32_t acc = bias[co];
      const int8_t *wr = w + static_cast<int64_t>(co) * cin;
    LIN_CIN:
      for (int ci = 0; ci < cin; ++ci) {
#pragma HLS PIPELINE II = 1
        acc += static_cast<int32_t>(wr[ci]) * x[ci];
      }
      acc_plane[0] = acc;
      requant_store(code, relu, co, 1, mult[co], shift[co], y, logits);
    }
    return;
  }
CONV_COUT:
  for (int co = 0; co < cout; ++co) {
  CONV_INIT:
    for (int p = 0; p < plane; ++p) acc_plane[p] = bias[co];
  CONV_CIN:
    for (int ci = 0; ci < cin; ++ci) {
    CONV_KY:
      for (int ky = 0; ky < kk; ++ky) {
      CONV_KX:
        for (int kx = 0; kx < kk; ++kx) {
          const int32_t wv = w[((static_cast<int64_t>(co) * cin + ci) * kk + ky) * kk + kx];
          // valid output columns: 0 <= ox*st - pad + kx < win
          int ox_lo = pad - kx > 0 ? (pad - kx + st - 1) / st : 0;
          int ox_hi = (win - 1 + pad - kx) >= 0 ? (win - 1 + pad - kx) / st + 1 : 0;
          if (ox_hi > wout) ox_hi = wout;
        CONV_OY:
          for (int oy = 0; oy < hout; ++oy) {
            const int iy = oy * st - pad + ky;
            if (iy < 0 || iy >= hin) continue;
            const int16_t *xr = x + (ci * hin + iy) * win - pad + kx;
            int32_t *ar = acc_plane + oy * wout;
            if (st == 1) {  // unit stride: contiguous row (lets g++ vectorise; same result)
            CONV_OX1:
              for (int ox = ox_lo; ox < ox_hi; ++ox) {
#pragma HLS PIPELINE II = 1
                ar[ox] += wv * xr[ox];
              }
            } else {
            CONV_OX:
              for (int ox = ox_lo; ox < ox_hi; ++ox) {
#pragma HLS PIPELINE II = 1
                ar[ox] += wv * xr[ox * st];
              }
            }
          }
        }
      }
    }
    requant_store(code, relu, co, plane, mult[co], shift[co], y, logits);
  }
}

void pool_op(const int32_t *op) {
  const int code = op[0];
  const int16_t *x = slots[op[1]];
  int16_t *y = slots[op[3]];
  const int c = op[4], hin = op[5], win = op[6], hout = op[8], wout = op[9];
  const int kk = code == OP_GAP ? hin : op[10], kw = code == OP_GAP ? win : op[10];
  const int st = code == OP_GAP ? 1 : op[11], pad = code == OP_MAXPOOL ? op[12] : 0;
POOL_C:
  for (int ch = 0; ch < c; ++ch)
  POOL_OY:
    for (int oy = 0; oy < hout; ++oy)
    POOL_OX:
      for (int ox = 0; ox < wout; ++ox) {
        int64_t acc = code == OP_MAXPOOL ? -(int64_t(1) << 40) : 0;
      POOL_KY:
        for (int ky = 0; ky < kk; ++ky)
        POOL_KX:
          for (int kx = 0; kx < kw; ++kx) {
#pragma HLS PIPELINE II = 1
            const int iy = oy * st - pad + ky, ix = ox * st - pad + kx;
            if (iy < 0 || iy >= hin || ix < 0 || ix >= win) continue;
            const int64_t v = x[(ch * hin + iy) * win + ix];
            if (code == OP_MAXPOOL) acc = v > acc ? v : acc;
            else acc += v;
          }
        y[(ch * hout + oy) * wout + ox] =
            static_cast<int16_t>(code == OP_MAXPOOL ? acc : nessa::div_round(acc, static_cast<int64_t>(kk) * kw));
      }
}

void add_op(const int32_t *op) {
  const int16_t *a = slots[op[1]], *b = slots[op[2]];
  int16_t *y = slots[op[3]];
  const int elems = op[7] * op[8] * op[9];
  const int64_t ma = pbuf[op[15]], mb = pbuf[op[15] + 1];
  const int sh = pbuf[op[15] + 2];
ADD_ELEMS:
  for (int e = 0; e < elems; ++e) {
#pragma HLS PIPELINE II = 1
    int32_t q = nessa::sat8(nessa::rshift_round(a[e] * ma + b[e] * mb, sh));
    if (op[13] && q < 0) q = 0;
    y[e] = static_cast<int16_t>(q);
  }
}

void softmax_onehot(const int32_t *logits, int classes, int label, int16_t *feat) {
  int32_t mx = logits[0];
SM_MAX:
  for (int c = 1; c < classes; ++c) mx = logits[c] > mx ? logits[c] : mx;
  int64_t e[NF_MAX_CLASSES];
  int64_t sum = 0;
SM_EXP:
  for (int c = 0; c < classes; ++c) {
#pragma HLS PIPELINE II = 1
    e[c] = nessa::exp_q(static_cast<int64_t>(logits[c]) - mx);
    sum += e[c];
  }
SM_DIV:
  for (int c = 0; c < classes; ++c) {
    const int64_t p = (e[c] * (int64_t(1) << nessa::PROB_FRAC) + (sum >> 1)) / sum;
    feat[c] = static_cast<int16_t>(p - (c == label ? (int64_t(1) << nessa::PROB_FRAC) : 0));
  }
}

void run_program(hls::stream<int16_t> &xs, int label, int elems, hls::stream<OutRow> &os) {
  const int n_ops = pbuf[2], classes = pbuf[7], edim = pbuf[8];
LOAD_SLOT0:
  for (int e = 0; e < elems; ++e) slots[0][e] = xs.read();
  int32_t logits[NF_MAX_CLASSES];
  OutRow row;
OPS:
  for (int o = 0; o < n_ops; ++o) {
    const int32_t *op = pbuf + NF_HEADER + o * NF_OPW;
    switch (op[0]) {
      case OP_CONV:
      case OP_LINEAR:
        conv_op(op, logits);
        break;
      case OP_HEAD:
      EMB_COPY:
        for (int e = 0; e < edim; ++e) row.emb[e] = static_cast<int8_t>(slots[op[1]][e]);
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
  softmax_onehot(logits, classes, label, row.feat);
  os.write(row);
}

void store_row(hls::stream<OutRow> &os, int64_t i, int classes, int edim, int flags, int16_t *feats, int8_t *embed) {
  const OutRow row = os.read();
STORE_FEAT:
  for (int c = 0; c < classes; ++c) feats[i * classes + c] = row.feat[c];
  if (flags & 1) {
  STORE_EMB:
    for (int e = 0; e < edim; ++e) embed[i * edim + e] = row.emb[e];
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
                               const int8_t *weights, int16_t *feats, int8_t *embed, int32_t *stats,
                               int in_offset, int prog_words, int n, int flags) {
#pragma HLS INTERFACE m_axi port = samples offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = labels offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = prog offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = weights offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = feats offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = embed offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = stats offset = slave bundle = gmem
#pragma HLS INTERFACE s_axilite port = in_offset
#pragma HLS INTERFACE s_axilite port = prog_words
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = flags
#pragma HLS INTERFACE s_axilite port = return
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
LOAD_WEIGHTS:
  for (int i = 0; i < pbuf[15]; ++i) wbuf[i] = weights[i];
  const int c = pbuf[3], h = pbuf[4], w = pbuf[5], layout = pbuf[6], classes = pbuf[7], edim = pbuf[8];
  const int64_t sample_bytes = static_cast<int64_t>(c) * h * w;
SAMPLES:
  for (int i = 0; i < n; ++i) {
#pragma HLS DATAFLOW
    hls::stream<int16_t> xs("pixels");
    hls::stream<OutRow> os("rows");
    load_sample(samples, static_cast<int64_t>(in_offset) + i * sample_bytes, c, h, w, layout, xs);
    run_program(xs, labels[i], c * h * w, os);
    store_row(os, i, classes, edim, flags, feats, embed);
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
