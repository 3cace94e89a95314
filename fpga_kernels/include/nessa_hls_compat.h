// nessa_hls_compat.h -- lets the HLS kernels build with plain g++ when the Xilinx headers
// (hls_stream.h, ap_int.h from Vitis HLS) are absent, and makes that x86 build fail where the
// hardware would. With Vitis on the include path the real headers are used and the macros below
// expand to the plain HLS forms. HLS pragmas are ignored by g++ (-Wno-unknown-pragmas), which is
// why stream depths and dataflow regions are written with the macros here, not bare pragmas.
//
// Stand-ins (hardware semantics, stricter than Vitis' own csim, whose streams are unbounded):
//   hls::stream<T[, DEPTH]> -- a FIFO that holds DEPTH words (default 2, the HLS default for an
//       internal stream; NESSA_STREAM_DEPTH(s, n) or the template parameter sets it).
//       Outside a dataflow region a write to a full stream or a read from an empty one aborts
//       naming the stream (in hardware the sequential code would stall forever).
//   NESSA_DATAFLOW_BEGIN(name) / NESSA_PROCESS(call) / NESSA_DATAFLOW_END() -- a dataflow
//       region: the processes run concurrently (cooperative threads on their own stacks, one OS
//       thread, switched when a process blocks), every stream blocks like a bounded FIFO, and when every
//       unfinished process is blocked the region aborts naming the processes and the streams
//       they wait on (a real deadlock: with blocking reads and writes only -- a Kahn network --
//       whether one occurs does not depend on the schedule). Also aborts on a stream written or
//       read by two processes, and on words left in a stream when the region ends.
//   ap_uint<W>/ap_int<W> -- W <= 64 bit integers that wrap modulo 2^W on assignment, and
//       ap_uint<512>, a 64-byte little-endian word (the m_axi data type) with range get / set.
//   nessa_get_lane / nessa_set_lane -- lane access to an ap_uint<512> that reads the same with
//       the real ap_int.h (range()) and here.
#ifndef NESSA_HLS_COMPAT_H
#define NESSA_HLS_COMPAT_H

#include <cstdint>

#if defined(__has_include)
#if __has_include(<hls_stream.h>) && __has_include(<ap_int.h>) && !defined(NESSA_FORCE_COMPAT)
#define NESSA_HAVE_XILINX_HLS 1
#endif
#endif

#define NESSA_PRAGMA_(x) _Pragma(#x)
#define NESSA_PRAGMA(x) NESSA_PRAGMA_(x)

#ifdef NESSA_HAVE_XILINX_HLS
#include <ap_int.h>
#include <hls_stream.h>

#define NESSA_STREAM_DEPTH(var, n) NESSA_PRAGMA(HLS STREAM variable = var depth = n)
#define NESSA_DATAFLOW_BEGIN(name)
#define NESSA_PROCESS(call) call
#define NESSA_DATAFLOW_END()

template <int W>
static inline uint64_t nessa_get_lane(const ap_uint<512> &w, int lane) {
  return w.range(W * lane + W - 1, W * lane).to_uint64();
}
template <int W>
static inline void nessa_set_lane(ap_uint<512> &w, int lane, uint64_t v) {
  w.range(W * lane + W - 1, W * lane) = v;
}
#else
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace nessa_compat {

class StreamBase;

// Switching between processes. x86-64: six callee-saved registers and the stack pointer (a
// switch costs a few ns; glibc's swapcontext also saves the signal mask with a system call, ~1 us,
// which made the emulator 3-6x slower). Elsewhere: ucontext.
#if defined(__x86_64__) && !defined(NESSA_COMPAT_UCONTEXT)
#define NESSA_COMPAT_FAST_SWITCH 1
struct Context {
  void *sp = nullptr;
};
// Saves the callee-saved registers on the current stack, stores its pointer in *save and
// continues on load (whose top holds the same frame, or a fresh one from init_context).
__attribute__((naked, noinline)) static void switch_context(void **save, void *load) {
  __asm__ volatile(
      "pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n\t"
      "movq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n\t"
      "popq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret\n\t");
}
// A fresh stack whose first switch "returns" into entry (which must never return).
static inline void init_context(Context &c, void *stack, std::size_t bytes, void (*entry)()) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
  void **sp = reinterpret_cast<void **>(top);
  *--sp = nullptr;                               // entry's own return address (never used)
  *--sp = reinterpret_cast<void *>(entry);       // popped by ret
  for (int r = 0; r < 6; ++r) *--sp = nullptr;   // rbp rbx r12 r13 r14 r15
  c.sp = sp;
}
#else
struct Context {
  ucontext_t uc;
};
#endif

// One process of a dataflow region: a coroutine on its own stack.
struct Process {
  std::string name;
  std::function<void()> body;
  Context ctx;
  void *stack = nullptr;
  bool done = false;
  const StreamBase *waits_on = nullptr;  // the stream it is blocked on (nullptr: runnable)
  bool waits_to_write = false;
};

[[noreturn]] inline void fail(const std::string &msg) {
  std::fprintf(stderr, "hls::stream (compat): %s\n", msg.c_str());
  std::fflush(nullptr);  // what the kernel printed before, then the reason
  std::abort();
}

class StreamBase {
 public:
  virtual ~StreamBase() = default;
  virtual std::size_t size() const = 0;
  virtual std::size_t depth() const = 0;
  const std::string &name() const { return name_; }
  // per region: the processes that wrote / read it (single producer, single consumer)
  const Process *writer = nullptr, *reader = nullptr;
  uint64_t region_seen = 0;  // serial number of the region that last used it

 protected:
  std::string name_;
};

constexpr std::size_t kStackBytes = 8u << 20;  // lazily committed; kernels keep locals small

// Stacks are reused across regions (a kernel opens one region per block / sample) and unmapped
// when the thread ends (the emulator runs each kernel call on a fresh thread).
struct StackPool {
  std::vector<void *> free;
  ~StackPool() {
    for (void *s : free) munmap(s, kStackBytes);
  }
};
inline std::vector<void *> &stack_pool() {
  static thread_local StackPool pool;
  return pool.free;
}
inline void *take_stack() {
  auto &pool = stack_pool();
  if (!pool.empty()) {
    void *s = pool.back();
    pool.pop_back();
    return s;
  }
  void *s = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (s == MAP_FAILED) fail("cannot map a process stack");
  mprotect(s, 4096, PROT_NONE);  // guard page: an overflow faults instead of corrupting memory
  return s;
}

class Region;
inline Region *&current_region() {
  static thread_local Region *r = nullptr;
  return r;
}

class Region {
 public:
  explicit Region(const char *name) : name_(name), serial_(++serials()) {}
  Region(const Region &) = delete;
  Region &operator=(const Region &) = delete;
  ~Region() {
    for (Process *p : procs_) {
      if (p->stack) stack_pool().push_back(p->stack);
      delete p;
    }
  }

  void add(const char *text, std::function<void()> body) {
    Process *p = new Process;
    p->name = text;
    p->body = std::move(body);
    procs_.push_back(p);
  }

  // Runs every process to completion (or aborts on a deadlock), then checks the streams.
  void run() {
    if (current_region() != nullptr) fail(std::string("dataflow region '") + name_ + "' nested in another");
    current_region() = this;
    for (Process *p : procs_) {
      p->stack = take_stack();
#ifdef NESSA_COMPAT_FAST_SWITCH
      init_context(p->ctx, p->stack, kStackBytes, &Region::trampoline);
#else
      getcontext(&p->ctx.uc);
      p->ctx.uc.uc_stack.ss_sp = p->stack;
      p->ctx.uc.uc_stack.ss_size = kStackBytes;
      p->ctx.uc.uc_link = &sched_.uc;
      makecontext(&p->ctx.uc, &Region::trampoline, 0);
#endif
    }
    for (;;) {
      bool all_done = true, progressed = false;
      for (Process *p : procs_) {
        if (p->done) continue;
        all_done = false;
        if (!runnable(p)) continue;
        p->waits_on = nullptr;
        running_ = p;
        to_process(p);
        running_ = nullptr;
        progressed = true;
      }
      if (all_done) break;
      if (!progressed) deadlock();
    }
    current_region() = nullptr;
    for (StreamBase *s : touched_)
      if (s->size() != 0)
        fail("stream '" + s->name() + "' holds " + std::to_string(s->size()) + " word(s) after dataflow region '" +
             name_ + "' ended: its consumer reads fewer words than its producer writes");
  }

  // Called by a stream that cannot proceed: park the running process until it can.
  void block(const StreamBase *s, bool writing) {
    Process *p = running_;
    p->waits_on = s;
    p->waits_to_write = writing;
    to_scheduler(p);
  }

  // Single producer / single consumer, as HLS requires of a dataflow channel.
  void note(StreamBase *s, bool writing) {
    if (s->region_seen != serial_) {
      s->region_seen = serial_;
      s->writer = s->reader = nullptr;
      touched_.push_back(s);
    }
    const Process *&who = writing ? s->writer : s->reader;
    if (who == nullptr) who = running_;
    else if (who != running_)
      fail("stream '" + s->name() + "' is " + (writing ? "written" : "read") + " by two processes of dataflow region '" +
           name_ + "' ('" + who->name + "' and '" + running_->name + "'): a channel has one producer and one consumer");
  }

 private:
  static void trampoline() {
    Region *r = current_region();
    Process *p = r->running_;
    p->body();
    p->done = true;
#ifdef NESSA_COMPAT_FAST_SWITCH
    r->to_scheduler(p);  // never resumed: done
    __builtin_unreachable();
#endif  // ucontext: returning goes to uc_link, the scheduler
  }

  void to_process(Process *p) {
#ifdef NESSA_COMPAT_FAST_SWITCH
    switch_context(&sched_.sp, p->ctx.sp);
#else
    swapcontext(&sched_.uc, &p->ctx.uc);
#endif
  }
  void to_scheduler(Process *p) {
#ifdef NESSA_COMPAT_FAST_SWITCH
    switch_context(&p->ctx.sp, sched_.sp);
#else
    swapcontext(&p->ctx.uc, &sched_.uc);
#endif
  }

  static bool runnable(const Process *p) {
    if (p->waits_on == nullptr) return true;
    return p->waits_to_write ? p->waits_on->size() < p->waits_on->depth() : p->waits_on->size() > 0;
  }

  [[noreturn]] void deadlock() {
    std::string msg = "deadlock in dataflow region '" + name_ + "': every unfinished process is blocked";
    for (const Process *p : procs_) {
      if (p->done) continue;
      msg += "\n    process '" + p->name + "' waits to " + (p->waits_to_write ? "write full" : "read empty") +
             " stream '" + p->waits_on->name() + "' (" + std::to_string(p->waits_on->size()) + " of depth " +
             std::to_string(p->waits_on->depth()) + ")";
    }
    fail(msg);
  }

  static uint64_t &serials() {
    static thread_local uint64_t n = 0;
    return n;
  }

  std::string name_;
  uint64_t serial_;
  std::vector<Process *> procs_;
  std::vector<StreamBase *> touched_;
  Context sched_;
  Process *running_ = nullptr;
};

}  // namespace nessa_compat

namespace hls {
// stream<T> holds 2 words; stream<T, N> (as in Vitis HLS 2022+) is a stream<T> of depth N.
template <typename T, int DEPTH = 0>
class stream;

template <typename T>
class stream<T, 0> : public nessa_compat::StreamBase {
 public:
  stream() : stream("(unnamed)") {}
  explicit stream(const char *name) { name_ = name; }
  stream(const stream &) = delete;
  stream &operator=(const stream &) = delete;

  void set_depth(std::size_t d) {
    if (d < 1) nessa_compat::fail("stream '" + name_ + "': depth must be >= 1");
    depth_ = d;
  }
  std::size_t depth() const override { return depth_; }
  std::size_t size() const override { return q_.size(); }
  bool empty() const { return q_.empty(); }
  bool full() const { return q_.size() >= depth_; }

  void write(const T &v) {
    nessa_compat::Region *r = nessa_compat::current_region();
    if (r == nullptr) {
      if (full())
        nessa_compat::fail("write to full stream '" + name_ + "' (depth " + std::to_string(depth_) +
                           ") outside a dataflow region: in hardware this write stalls forever (deepen the stream "
                           "or make producer and consumer dataflow processes)");
    } else {
      r->note(this, true);
      while (full()) r->block(this, true);
    }
    q_.push_back(v);
  }
  T read() {
    nessa_compat::Region *r = nessa_compat::current_region();
    if (r == nullptr) {
      if (q_.empty())
        nessa_compat::fail("read from empty stream '" + name_ + "' outside a dataflow region: in hardware this read "
                           "stalls forever");
    } else {
      r->note(this, false);
      while (q_.empty()) r->block(this, false);
    }
    T v = q_.front();
    q_.pop_front();
    return v;
  }
  void read(T &v) { v = read(); }
  stream &operator<<(const T &v) {
    write(v);
    return *this;
  }
  stream &operator>>(T &v) {
    v = read();
    return *this;
  }

 private:
  std::deque<T> q_;
  std::size_t depth_ = 2;  // the HLS default for an internal stream
};

template <typename T, int DEPTH>
class stream : public stream<T, 0> {
  static_assert(DEPTH >= 1, "a stream holds at least one word");

 public:
  stream() { this->set_depth(DEPTH); }
  explicit stream(const char *name) : stream<T, 0>(name) { this->set_depth(DEPTH); }
};
}  // namespace hls

#define NESSA_STREAM_DEPTH(var, n) (var).set_depth(n)
#define NESSA_DATAFLOW_BEGIN(name) ::nessa_compat::Region nessa_dataflow_region_(name)
#define NESSA_PROCESS(call) nessa_dataflow_region_.add(#call, [&]() { call; })
#define NESSA_DATAFLOW_END() nessa_dataflow_region_.run()

template <int W>
struct ap_uint {
  static_assert(W >= 1 && W <= 64, "compat ap_uint supports 1..64 bits (and 512)");
  uint64_t v;
  static constexpr uint64_t mask() { return W == 64 ? ~0ULL : ((1ULL << W) - 1); }
  ap_uint() : v(0) {}
  ap_uint(uint64_t x) : v(x & mask()) {}  // NOLINT: implicit like the real ap_uint
  operator uint64_t() const { return v; }
};

// The m_axi word: 64 bytes, lane i of width W at bits [W*i + W-1 : W*i] (little-endian, so the
// bytes in DDR are the host array's bytes). Only what the kernels use: lanes and zero.
template <>
struct ap_uint<512> {
  uint64_t w[8];
  ap_uint() : w{} {}
  uint64_t get_bits(int lo, int width) const {  // width <= 64, lo % width == 0
    const uint64_t word = w[lo >> 6];
    const int sh = lo & 63;
    return width == 64 ? word : (word >> sh) & ((1ULL << width) - 1);
  }
  void set_bits(int lo, int width, uint64_t x) {
    uint64_t &word = w[lo >> 6];
    const int sh = lo & 63;
    const uint64_t m = width == 64 ? ~0ULL : ((1ULL << width) - 1) << sh;
    word = (word & ~m) | ((x << sh) & m);
  }
};
static_assert(sizeof(ap_uint<512>) == 64, "an m_axi word is 64 bytes");

template <int W>
static inline uint64_t nessa_get_lane(const ap_uint<512> &w, int lane) {
  static_assert(W == 8 || W == 16 || W == 32 || W == 64, "lanes of 8, 16, 32 or 64 bits");
  return w.get_bits(W * lane, W);
}
template <int W>
static inline void nessa_set_lane(ap_uint<512> &w, int lane, uint64_t v) {
  static_assert(W == 8 || W == 16 || W == 32 || W == 64, "lanes of 8, 16, 32 or 64 bits");
  w.set_bits(W * lane, W, v);
}

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
