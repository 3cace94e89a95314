// nessa_hls_compat.h -- lets the HLS kernels build with plain g++ when the Xilinx headers
// (hls_stream.h, ap_int.h from Vitis HLS) are absent. With Vitis on the include path the real
// headers are used and this file adds nothing. HLS pragmas are ignored by g++ (-Wno-unknown-pragmas).
//
// Stand-ins (C-simulation semantics, which is what Vitis' own csim does too):
//   hls::stream<T>  -- unbounded FIFO; read() on an empty stream is a kernel bug and aborts.
//   ap_uint<W>/ap_int<W> -- W <= 64 bit integers that wrap modulo 2^W on assignment.
#ifndef NESSA_HLS_COMPAT_H
#define NESSA_HLS_COMPAT_H

#include <cstdint>

#if defined(__has_include)
#if __has_include(<hls_stream.h>) && __has_include(<ap_int.h>) && !defined(NESSA_FORCE_COMPAT)
#define NESSA_HAVE_XILINX_HLS 1
#endif
#endif

#ifdef NESSA_HAVE_XILINX_HLS
#include <ap_int.h>
#include <hls_stream.h>
#else
#include <cstdio>
#include <cstdlib>
#include <deque>

namespace hls {
template <typename T>
class stream {
 public:
  stream() = default;
  explicit stream(const char *) {}
  stream(const stream &) = delete;
  stream &operator=(const stream &) = delete;
  void write(const T &v) { q_.push_back(v); }
  T read() {
    if (q_.empty()) {
      std::fprintf(stderr, "hls::stream (compat): read from an empty stream\n");
      std::abort();
    }
    T v = q_.front();
    q_.pop_front();
    return v;
  }
  void read(T &v) { v = read(); }
  stream &operator<<(const T &v) { write(v); return *this; }
  stream &operator>>(T &v) { v = read(); return *this; }
  bool empty() const { return q_.empty(); }
  bool full() const { return false; }
  std::size_t size() const { return q_.size(); }

 private:
  std::deque<T> q_;
};
}  // namespace hls

template <int W>
struct ap_uint {
  static_assert(W >= 1 && W <= 64, "compat ap_uint supports 1..64 bits");
  uint64_t v;
  static constexpr uint64_t mask() { return W == 64 ? ~0ULL : ((1ULL << W) - 1); }
  ap_uint() : v(0) {}
  ap_uint(uint64_t x) : v(x & mask()) {}  // NOLINT: implicit like the real ap_uint
  operator uint64_t() const { return v; }
};

template <int W>
struct ap_int {
  static_assert(W >= 1 && W <= 64, "compat ap_int supports 1..64 bits");
  int64_t v;
  static int64_t wrap(int64_t x) {
    if (W == 64) return x;
    const uint64_t m = (1ULL << W) - 1;
    uint64_t u = static_cast<uint64_t>(x) & m;
    if (u >> (W - 1)) u |= ~m;  // sign-extend
    return static_cast<int64_t>(u);
  }
  ap_int() : v(0) {}
  ap_int(int64_t x) : v(wrap(x)) {}  // NOLINT: implicit like the real ap_int
  operator int64_t() const { return v; }
};
#endif  // NESSA_HAVE_XILINX_HLS

#endif  // NESSA_HLS_COMPAT_H
