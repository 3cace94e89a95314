"""The x86 stand-in for ``hls::stream`` fails where the hardware would (nessa_hls_compat.h).

One small C++ program, built once with g++ against the compat header, runs one scenario per
invocation: bounded streams outside a dataflow region (a full write / an empty read aborts and
names the stream), depths set by the macro and the template parameter, dataflow regions whose
processes run concurrently over bounded FIFOs (a producer / consumer pair passes at depth 2, a
real deadlock aborts naming the blocked processes and streams), leftover words and a second
producer, and the sequential producer-then-consumer shape nessa_greedy's phase 0 had before
(issue #20), which C simulation with unbounded streams let through.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fpga_kernels import KERNEL_DIR

_PROGRAM = r"""
#include <cstdio>
#include <cstring>
#include "nessa_hls_compat.h"

static void produce(hls::stream<int> &s, int n) { for (int i = 0; i < n; ++i) s.write(i); }
static void consume(hls::stream<int> &s, int n, long &sum) { for (int i = 0; i < n; ++i) sum += s.read(); }
static void pass(hls::stream<int> &in, hls::stream<int> &out, int n) { for (int i = 0; i < n; ++i) out.write(2 * in.read()); }

int main(int argc, char **argv) {
  const char *what = argv[1];
  if (!strcmp(what, "seq_full")) {            // sequential code: the third write of a depth-2 stream
    hls::stream<int> s("feats_maxd");
    produce(s, 3);
  } else if (!strcmp(what, "seq_empty")) {
    hls::stream<int> s("tiles");
    s.read();
  } else if (!strcmp(what, "seq_depth_macro")) {  // a declared depth holds that many words
    hls::stream<int> s("deep");
    NESSA_STREAM_DEPTH(s, 100);
    long sum = 0;
    produce(s, 100);
    consume(s, 100, sum);
    std::printf("sum=%ld\n", sum);
    produce(s, 101);                              // one more than declared: aborts
  } else if (!strcmp(what, "seq_depth_template")) {
    hls::stream<int, 5> s("five");
    produce(s, 5);
    std::printf("size=%zu full=%d\n", s.size(), (int)s.full());
    s.write(5);
  } else if (!strcmp(what, "df_pipeline")) {      // 10,000 words through two depth-2 FIFOs
    hls::stream<int> a("a"), b("b");
    long sum = 0;
    NESSA_DATAFLOW_BEGIN("pipe");
    NESSA_PROCESS(produce(a, 10000));
    NESSA_PROCESS(pass(a, b, 10000));
    NESSA_PROCESS(consume(b, 10000, sum));
    NESSA_DATAFLOW_END();
    std::printf("sum=%ld\n", sum);
  } else if (!strcmp(what, "df_deadlock")) {      // A fills a then writes b; B reads b first
    hls::stream<int> a("a_fifo"), b("b_fifo");
    long sum = 0;
    NESSA_DATAFLOW_BEGIN("crossed");
    NESSA_PROCESS(produce(a, 3); produce(b, 1));
    NESSA_PROCESS(consume(b, 1, sum); consume(a, 3, sum));
    NESSA_DATAFLOW_END();
    std::printf("unreachable sum=%ld\n", sum);
  } else if (!strcmp(what, "df_deadlock_fixed")) {  // the same with a deep enough FIFO completes
    hls::stream<int> a("a_fifo"), b("b_fifo");
    NESSA_STREAM_DEPTH(a, 3);
    long sum = 0;
    NESSA_DATAFLOW_BEGIN("crossed");
    NESSA_PROCESS(produce(a, 3); produce(b, 1));
    NESSA_PROCESS(consume(b, 1, sum); consume(a, 3, sum));
    NESSA_DATAFLOW_END();
    std::printf("sum=%ld\n", sum);
  } else if (!strcmp(what, "df_leftover")) {
    hls::stream<int> a("spill");
    NESSA_STREAM_DEPTH(a, 8);
    long sum = 0;
    NESSA_DATAFLOW_BEGIN("short_reader");
    NESSA_PROCESS(produce(a, 5));
    NESSA_PROCESS(consume(a, 4, sum));
    NESSA_DATAFLOW_END();
  } else if (!strcmp(what, "df_two_writers")) {
    hls::stream<int> a("shared");
    long sum = 0;
    NESSA_DATAFLOW_BEGIN("fan_in");
    NESSA_PROCESS(produce(a, 2));
    NESSA_PROCESS(produce(a, 2));
    NESSA_PROCESS(consume(a, 4, sum));
    NESSA_DATAFLOW_END();
  } else if (!strcmp(what, "df_regions_in_loop")) {  // one region per iteration, streams re-made
    long sum = 0;
    for (int it = 0; it < 300; ++it) {
      hls::stream<int> a("pixels");
      NESSA_DATAFLOW_BEGIN("sample");
      NESSA_PROCESS(produce(a, 7));
      NESSA_PROCESS(consume(a, 7, sum));
      NESSA_DATAFLOW_END();
    }
    std::printf("sum=%ld\n", sum);
  } else if (!strcmp(what, "old_phase0")) {        // nessa_greedy phase 0 before issue #20
    const int n = 40, words_per_row = 2;
    hls::stream<int> fs("feats_maxd");
    produce(fs, n * words_per_row);                 // read_feats: every row first ...
    long sum = 0;
    consume(fs, n * words_per_row, sum);            // ... then block_max_d2
  } else if (!strcmp(what, "lanes")) {             // ap_uint<512>: lanes are the bytes in memory
    unsigned char mem[64];
    for (int i = 0; i < 64; ++i) mem[i] = (unsigned char)(i * 7 + 1);
    ap_uint<512> w;
    std::memcpy(&w, mem, 64);
    std::printf("%llx %llx %llx\n", (unsigned long long)nessa_get_lane<16>(w, 3),
                (unsigned long long)nessa_get_lane<8>(w, 63), (unsigned long long)nessa_get_lane<32>(w, 15));
    nessa_set_lane<16>(w, 31, 0xBEEF);
    std::memcpy(mem, &w, 64);
    std::printf("%x %x %x\n", mem[62], mem[63], mem[61]);
  }
  return 0;
}
"""


def _build(d, *flags: str):
    cxx = shutil.which("g++")
    if cxx is None:
        raise RuntimeError("g++ is needed to build the kernels' emulation")
    (d / "t.cpp").write_text(_PROGRAM)
    exe = d / "t"
    subprocess.run([cxx, "-O1", "-std=c++17", "-Wall", "-Wno-unknown-pragmas", "-DNESSA_FORCE_COMPAT", *flags,
                    f"-I{KERNEL_DIR / 'include'}", "-o", str(exe), str(d / "t.cpp")], check=True,
                   capture_output=True, text=True)
    return exe


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("hls_streams"))


def _run(prog, what: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(prog), what], capture_output=True, text=True, timeout=30)


def _aborts(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_write_to_full_stream_outside_dataflow_aborts_naming_it(prog):
    _aborts(_run(prog, "seq_full"), "write to full stream 'feats_maxd'", "depth 2", "outside a dataflow region")


def test_read_from_empty_stream_aborts(prog):
    _aborts(_run(prog, "seq_empty"), "read from empty stream 'tiles'")


def test_declared_depth_holds_exactly_that_many(prog):
    p = _run(prog, "seq_depth_macro")
    assert "sum=4950" in p.stdout
    _aborts(p, "write to full stream 'deep' (depth 100)")
    p = _run(prog, "seq_depth_template")
    assert "size=5 full=1" in p.stdout
    _aborts(p, "stream 'five' (depth 5)")


def test_dataflow_processes_run_concurrently_through_depth_two_fifos(prog):
    p = _run(prog, "df_pipeline")
    assert p.returncode == 0, p.stderr
    assert "sum=99990000" in p.stdout  # 2 * sum(range(10000))


def test_a_real_deadlock_aborts_naming_processes_and_streams(prog):
    p = _run(prog, "df_deadlock")
    _aborts(p, "deadlock in dataflow region 'crossed'", "waits to write full stream 'a_fifo' (2 of depth 2)",
            "waits to read empty stream 'b_fifo'")
    assert "unreachable" not in p.stdout
    p = _run(prog, "df_deadlock_fixed")
    assert p.returncode == 0 and "sum=3" in p.stdout, p.stderr


def test_leftover_words_and_second_producer_abort(prog):
    _aborts(_run(prog, "df_leftover"), "stream 'spill' holds 1 word(s) after dataflow region 'short_reader'")
    _aborts(_run(prog, "df_two_writers"), "stream 'shared' is written by two processes of dataflow region 'fan_in'")


def test_one_region_per_loop_iteration(prog):
    p = _run(prog, "df_regions_in_loop")
    assert p.returncode == 0 and "sum=6300" in p.stdout, p.stderr


def test_the_old_phase0_shape_is_caught(prog):
    """Producer then consumer in sequential code: Vitis csim passes it, the card would hang."""
    _aborts(_run(prog, "old_phase0"), "write to full stream 'feats_maxd'")


def test_wide_word_lanes_are_the_bytes_in_memory(prog):
    p = _run(prog, "lanes")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    mem = [(i * 7 + 1) & 0xFF for i in range(64)]
    assert int(lines[0], 16) == mem[6] | mem[7] << 8
    assert int(lines[1], 16) == mem[63]
    assert int(lines[2], 16) == int.from_bytes(bytes(mem[60:64]), "little")
    assert lines[3:] == ["ef", "be", f"{mem[61]:x}"]


def test_portable_ucontext_switch_behaves_the_same(tmp_path):
    """Hosts other than x86-64 switch processes with ucontext: same results, same deadlock report."""
    exe = _build(tmp_path, "-DNESSA_COMPAT_UCONTEXT")
    p = _run(exe, "df_pipeline")
    assert p.returncode == 0 and "sum=99990000" in p.stdout, p.stderr
    _aborts(_run(exe, "df_deadlock"), "deadlock in dataflow region 'crossed'", "stream 'a_fifo'", "stream 'b_fifo'")
