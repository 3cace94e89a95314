// nessa_pe.h -- compile-time parallelism of the NeSSA HLS kernels (the PE arrays), and the
// resource budget they imply on the SmartSSD's Kintex UltraScale+ XCKU15P.
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
//   activation-slot elements (stride 1 or 2; the slots are cyclically partitioned by NF_XBANKS
//   so the window is conflict-free), and does NF_TILE_OC * NF_TILE_PX = 512 int8 MACs into a
//   register array of int32 accumulators. Stride >= 3 reads the window in ceil(st / 2) cycles.
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
//   512 squared differences (17-bit) per cycle; a block of 64 rows costs n * max(ceil(d / 8),
//   ceil(64 / 32)) cycles (the second term: writing 64 uint16 similarities = two 512-bit beats).
//
// ---- Resource estimate (XCKU15P: 1,968 DSP48E2, 984 BRAM36, 128 URAM, 523k LUTs) -----------
//   DSP  conv PE array      512 MACs -> 256 DSP48E2 with the int8 packing of Xilinx WP486
//                           (two activations sharing one weight: the pixel pair (j, j+1) of a
//                           PE row; the first layer's uint8 pixels are 9-bit signed, still
//                           inside the 18-bit spacing), 512 without packing
//        requant            NF_TILE_PX lanes x int32*int32 (~4 DSP each)              64
//        linear lanes       64 int8 MACs, no shared operand (no packing)               64
//        residual add       16 lanes x 2 int16*int32 products (~2 DSP each)            64
//        greedy distances   512 17x17-bit squares (one DSP each)                      512
//        total              ~960 DSP (49%); ~1,216 (62%) without the packing
//   BRAM36  activation slots 6 x 64 banks x 1K x 16 bit (BRAM18 each)                 192
//           weight tile      32 rows x 256 x 128 bit                                    64
//           program          64K x 32 bit                                               57
//           greedy           candidate block 128, cover/fresh/pool/best/arg/count/selected 154
//           total            ~595 of 984 (60%), plus the RTL engine's own memories
//   URAM    weight store     2 MiB as 32K x 512-bit words (8 wide x 8 deep)             64
//           greedy ub[]      32K x 64 bit                                                 8
//           total            72 of 128 (56%)
//   LUTs: the 64 unrolled 32-step integer square roots of the greedy dominate (~130k).
//   Clock: 200 MHz (nessa_smartssd.cfg); 300 MHz is plausible for the PE array alone, not
//   claimed here.
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
