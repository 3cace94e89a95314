// nessa_fixed.h -- the fixed-point primitives shared by the NeSSA HLS kernels.
// The numpy golden model (host/golden/) is the specification; every function here states
// which golden function it implements. Change both together.
#ifndef NESSA_FIXED_H
#define NESSA_FIXED_H

#include <cstdint>

namespace nessa {

// Floor square roots (host/golden/similarity.py: isqrt_u64), digit by digit: one result bit per
// step from a compare-subtract and shifts, no multiplier (no DSP). Fully unrolled in a pipelined
// loop each step is one adder stage, so a unit takes one input per cycle.
//   isqrt32: the similarity lanes. d2 is clamped to 32 bits first (d2 >= 2^32 means dist >=
//            65536 > maxd_q, similarity 0, and isqrt32(2^32 - 1) = 65535 >= maxd_q gives 0 too),
//            so 16 steps of <= 33-bit adders suffice.
//   isqrt64: once per class (phase 0's largest distance; the max is taken over squared
//            distances, which orders them the same), 32 steps, not replicated.
static inline uint32_t isqrt32(uint32_t x) {
  uint32_t rem = x, root = 0, bit = 1u << 30;
ISQRT32_STEPS:
  for (int s = 0; s < 16; ++s) {
#pragma HLS UNROLL
    const uint32_t trial = root + bit;
    const uint32_t take = 0u - static_cast<uint32_t>(rem >= trial);  // all ones or 0: a mux, no branch
    rem -= trial & take;
    root = (root >> 1) + (bit & take);
    bit >>= 2;
  }
  return root;
}

static inline uint32_t isqrt64(uint64_t x) {
  uint64_t rem = x, root = 0, bit = 1ULL << 62;
ISQRT64_STEPS:
  for (int s = 0; s < 32; ++s) {
    const uint64_t trial = root + bit;
    if (rem >= trial) {
      rem -= trial;
      root = (root >> 1) + bit;
    } else {
      root >>= 1;
    }
    bit >>= 2;
  }
  return static_cast<uint32_t>(root);
}

// (x + 2^(s-1)) >> s, arithmetic (host/golden/qforward.py: rshift_round); 1 <= s <= 62.
static inline int64_t rshift_round(int64_t x, int s) { return (x + (int64_t(1) << (s - 1))) >> s; }

static inline int32_t sat8(int64_t x) { return x < -128 ? -128 : (x > 127 ? 127 : static_cast<int32_t>(x)); }

// floor((2a + b) / (2b)) for b > 0 (host/golden/qforward.py: div_round).
static inline int32_t div_round(int64_t a, int64_t b) {
  const int64_t num = 2 * a + b, den = 2 * b;
  int64_t q = num / den;
  if ((num % den != 0) && (num < 0)) --q;  // C++ truncates toward zero; we want floor
  return static_cast<int32_t>(q);
}

// div_round on 32-bit operands: the same result while |2a + b| < 2^31 (pool sums: at most the
// slot size times 255). HLS sizes a divider by its C types, so this one is a quarter of the
// 64-bit one in LUTs (a w-bit array divider is ~w^2 LUTs).
static inline int32_t div_round32(int32_t a, int32_t b) {
  const int32_t num = 2 * a + b, den = 2 * b;
  int32_t q = num / den;
  if ((num % den != 0) && (num < 0)) --q;
  return q;
}

// host/golden/softmax.py: EXP2_LUT[i] = round(2^16 * 2^(-i/256)), i = 0..256.
static const int32_t EXP2_LUT[257] = {
65536, 65359, 65182, 65006, 64830, 64655, 64480, 64306, 64132, 63958, 63785, 63613,
63441, 63269, 63098, 62928, 62757, 62588, 62419, 62250, 62081, 61914, 61746, 61579,
61413, 61247, 61081, 60916, 60751, 60587, 60423, 60260, 60097, 59934, 59772, 59611,
59449, 59289, 59128, 58968, 58809, 58650, 58491, 58333, 58176, 58018, 57861, 57705,
57549, 57393, 57238, 57083, 56929, 56775, 56622, 56468, 56316, 56163, 56012, 55860,
55709, 55558, 55408, 55258, 55109, 54960, 54811, 54663, 54515, 54368, 54221, 54074,
53928, 53782, 53637, 53492, 53347, 53203, 53059, 52916, 52773, 52630, 52488, 52346,
52204, 52063, 51922, 51782, 51642, 51502, 51363, 51224, 51085, 50947, 50810, 50672,
50535, 50399, 50262, 50126, 49991, 49856, 49721, 49586, 49452, 49319, 49185, 49052,
48920, 48787, 48655, 48524, 48393, 48262, 48131, 48001, 47871, 47742, 47613, 47484,
47356, 47228, 47100, 46973, 46846, 46719, 46593, 46467, 46341, 46216, 46091, 45966,
45842, 45718, 45594, 45471, 45348, 45225, 45103, 44981, 44859, 44738, 44617, 44497,
44376, 44256, 44137, 44017, 43898, 43780, 43661, 43543, 43425, 43308, 43191, 43074,
42958, 42841, 42726, 42610, 42495, 42380, 42265, 42151, 42037, 41923, 41810, 41697,
41584, 41472, 41360, 41248, 41136, 41025, 40914, 40804, 40693, 40583, 40473, 40364,
40255, 40146, 40037, 39929, 39821, 39714, 39606, 39499, 39392, 39286, 39180, 39074,
38968, 38863, 38757, 38653, 38548, 38444, 38340, 38236, 38133, 38030, 37927, 37824,
37722, 37620, 37518, 37417, 37316, 37215, 37114, 37014, 36914, 36814, 36715, 36615,
36516, 36417, 36319, 36221, 36123, 36025, 35928, 35831, 35734, 35637, 35541, 35445,
35349, 35253, 35158, 35063, 34968, 34874, 34779, 34685, 34591, 34498, 34405, 34312,
34219, 34126, 34034, 33942, 33850, 33759, 33667, 33576, 33486, 33395, 33305, 33215,
33125, 33035, 32946, 32857, 32768
};
static const int64_t LOG2E_Q15 = 47274;
static const int PROB_FRAC = 14;

// exp(z / 2^10) in Q16 for z <= 0 (host/golden/softmax.py: exp_q).
static inline int64_t exp_q(int64_t z) {
  const int64_t v = -z * LOG2E_Q15;
  const int64_t ip = v >> 25;
  const int64_t fr = v & ((int64_t(1) << 25) - 1);
  const int idx = static_cast<int>(fr >> 17);
  const int64_t rem = fr & ((int64_t(1) << 17) - 1);
  const int64_t lo = EXP2_LUT[idx], hi = EXP2_LUT[idx + 1];
  const int64_t e = lo - (((lo - hi) * rem + (int64_t(1) << 16)) >> 17);
  return ip >= 31 ? 0 : (e >> ip);
}

// xorshift32 (host/golden/stochastic.py).
static inline uint32_t seed_state(uint32_t seed) {
  const uint32_t s = seed * 0x9E3779B1u + 0x6D2B79F5u;
  return s ? s : 1u;
}
static inline uint32_t xorshift32(uint32_t s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

}  // namespace nessa

#endif  // NESSA_FIXED_H
