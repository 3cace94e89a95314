// nessa_pe.h -- compile-time parallelism of the NeSSA HLS kernels (the PE arrays); the resources
// they imply are derived by bench/hls_estimates.py against the SmartSSD's dynamic region.
//
// host/device/opcounts.py mirrors every constant below (tests/test_opcounts_cycles.py checks
// that they agree) and turns a model / class size into a cycle estimate of the kernels as
// written. NOTHING HERE HAS BEEN SYNTHESISED (no Vitis in this environment): the II and
// resource figures are what the loop structure and pragmas are designed for, to be confirmed
// by a `v++ -c` csynth report.
//
// ---- nessa_features: conv PE array (CONV_TAPS) ---------------------------------------------
//   Output-stationary array of NF_TILE_OC output channels x NF_TILE_PX output pixels (one row
//   segment). Per cycle (II = 1) it takes one tap (ci, ky, kx): NF_TILE_OC weights from the
//   weight tile wtile[][t] and NF_TILE_PX activations from a window of 2*NF_TILE_PX consecutive
//   activation-slot elements (stride 1 or 2; the slots are cyclically partitioned by NF_XBANKS),
//   and does NF_TILE_OC * NF_TILE_PX = 512 int8 MACs into a register array of int32
//   accumulators. The slots are 1024-bit words (NF_XBANKS elements): the window is the two
//   words holding its first element, one per BRAM port, and a shifter, so a tap is one cycle
//   for strides <= 4 (the model below charges stride >= 3 ceil(st / 2) cycles: conservative).
//   REQUANT_TILE writes by read-modify-write of two words at II 2 (the model charges 1).
//     cycles(conv, per sample) ~= sum over output-channel tiles of
//         weight-tile load  ceil(oc_in_tile * taps / NF_WLOAD_BYTES)
//       + per row segment   taps + NF_TAP_DEPTH        (taps = cin * k * k)
//       + per row segment   oc_in_tile                  (REQUANT_TILE, NF_TILE_PX lanes)
//   Weight tile: NF_WT_TAPS taps per output channel; larger layers are cut into tap chunks and
//   re-load the chunk per row segment (correct for any layer, slower for huge ones).
// ---- nessa_features: linear / head (LIN_CIN) -------------------------------------------------
//   A linear layer uses each weight once per sample, so it is bound by weight bandwidth, not
//   by DSPs: NF_LIN_LANES contiguous int8 weights (one 512-bit word of the URAM weight store)
//   x NF_LIN_LANES activations per cycle into an adder tree.
//     cycles = cout * (ceil(cin / NF_LIN_LANES) + NF_LIN_DEPTH)
// ---- nessa_features: element ops -------------------------------------------------------------
//   pools: NF_TILE_PX output pixels per cycle per tap (same window read as conv); GAP and the
//   residual add: NF_LIN_LANES / NF_TILE_PX elements per cycle; input load 1 pixel per cycle.
//
// ---- nessa_greedy: distance lanes (DIST_COLS) -------------------------------------------------
//   NESSA_GREEDY_BLK = 64 candidate rows x NESSA_GREEDY_DVEC = 8 feature columns per cycle:
//   512 squared differences (17-bit) per cycle; then NESSA_GREEDY_WBEAT = 32 multiplier-free
//   isqrt units and one aligned 512-bit sim beat per cycle, so a block of 64 rows costs
//   n * max(ceil(d / 8), ceil(64 / 32)) cycles. Phase 0 (maxd_q = 0) runs the same lanes (one
//   call site) and adds one such pass.
//
// ---- Resources: bench/hls_estimates.py ------------------------------------------------------
//   Derived from these constants (and the kernels' #defines) with stated per-unit costs, written
//   to BENCHMARKS.md ("HLS kernels: resource and II estimates"). Budget: the dynamic region of
//   the SmartSSD shell (xilinx_u2_gen3x4_xdma_gc_2_202110_1), ASSUMED 1,344 DSP / 672 BRAM36 /
//   87 URAM / 357k LUT (no authoritative figure found; fpga_kernels/README.md says how it was
//   chosen), design target <= 80 % of it. As written (all three kernels): ~1,038 DSP (77 %),
//   ~504 BRAM36 (75 %), 64 URAM (74 %), ~186k LUT (52 %). The DSPs are the conv PE array (512,
//   no WP486 packing claimed) and the greedy distance lanes (512); everything else multiplies in
//   fabric (BIND_OP) or not at all (the square roots).
//   Clock: 200 MHz (nessa_smartssd.cfg); not timing-closed (no Vitis here).
// Device figures: Xilinx DS890 / UltraScale+ product selection guide (XMP103), XCKU15P column.
#ifndef NESSA_PE_H
#define NESSA_PE_H

// nessa_features
#define NF_TILE_OC 32      // PE array rows: output channels per tile
#define NF_TILE_PX 16      // PE array columns: output pixels (one row segment) per tile
#define NF_XBANKS 64       // cyclic partition factor of every activation slot
#define NF_WT_TAPS 4096    // weight-tile depth (taps per output channel per chunk)
#define NF_WLOAD_BYTES 16  // weight-tile load width per cycle (128-bit words)
#define NF_LIN_LANES 64    // linear / GAP lanes (one 512-bit weight word per cycle)
#define NF_TAP_DEPTH 6     // CONV_TAPS pipeline depth (window read, mux, mult, add)
#define NF_LIN_DEPTH 8     // LIN_CIN pipeline depth (adder tree of 64)

// nessa_greedy
#define NESSA_GREEDY_DVEC 8  // feature columns per cycle in the distance lanes

#endif  // NESSA_PE_H
