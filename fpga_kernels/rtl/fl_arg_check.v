// fl_arg_check: the kernel's argument checks and a part descriptor's checks (combinational).
//
//   registers (n, k, ld, pointers, mode, sample_size, parts) --> arg_err[6:0]  (evaluated in CHECK)
//   descriptor words {n, k, seed, sample_size} (128 bits)    --> d_n, d_k, d_seed, d_ss, d_bad
// arg_err bits (fl_engine's status bits 0-6): 0 n not in 1..N_MAX, 1 k not in 1..n, 2 ld not in
// n..2**24-1 or ld % LANES != 0, 3 sim_ptr not aligned to 2*LANES bytes (or parts_ptr not 16-byte
// aligned), 4 an out pointer not 4-byte aligned, 5 mode not in 0..2, 6 mode 1 with sample_size 0.
// With parts >= 1 bits 0, 1, 6 are not checked (n, k, sample_size come from the descriptors) and
// each part's n <= ld is checked per part: d_bad = n not in 1..min(N_MAX, ld), k not in 1..n, or
// mode 1 with sample_size 0 (status bit 7). All compares are on the unsigned 32-bit registers.
`default_nettype none
module fl_arg_check #(
    parameter integer LANES = 32,   // elements per beat (bus = 16*LANES bits); power of two, 2..32
    parameter integer N_MAX = 4096  // largest class; power of two, >= 2*LANES
) (
    input  wire [31:0]  n_arg,
    input  wire [31:0]  k_arg,
    input  wire [31:0]  ld_arg,
    // lint: only the alignment bits of the pointers are checked here; the masters take the full pointers
    // verilator lint_off UNUSEDSIGNAL
    input  wire [63:0]  sim_ptr,
    input  wire [63:0]  ids_ptr,
    input  wire [63:0]  gains_ptr,
    input  wire [63:0]  weights_ptr,
    input  wire [63:0]  stats_ptr,
    input  wire [31:0]  mode_arg,
    input  wire [31:0]  ssize_arg,
    input  wire [31:0]  parts_arg,
    input  wire [63:0]  parts_ptr,
    // verilator lint_on UNUSEDSIGNAL
    input  wire [127:0] desc,        // a part descriptor, little endian {ss, seed, k, n}
    output wire [6:0]   arg_err,
    output wire [31:0]  d_n,
    output wire [31:0]  d_k,
    output wire [31:0]  d_seed,
    output wire [31:0]  d_ss,
    output wire         d_bad
);
    localparam integer LG_L = $clog2(LANES);

    generate
        if (LANES < 2 || LANES > 32 || (LANES & (LANES - 1)) != 0) begin : g_bad_lanes
            initial $fatal(1, "fl_arg_check: LANES=%0d must be a power of two in 2..32", LANES);
        end
        if (N_MAX < 2 * LANES || N_MAX > (1 << 20) || (N_MAX & (N_MAX - 1)) != 0) begin : g_bad_nmax
            initial $fatal(1, "fl_arg_check: N_MAX=%0d must be a power of two in 2*LANES..2**20", N_MAX);
        end
    endgenerate

    wire parts_on = (parts_arg != 0);
    assign arg_err[0] = !parts_on && ((n_arg == 0) || (n_arg > N_MAX));
    assign arg_err[1] = !parts_on && ((k_arg == 0) || (k_arg > n_arg));
    assign arg_err[2] = (!parts_on && ld_arg < n_arg) || (ld_arg[LG_L-1:0] != 0) || (ld_arg[31:24] != 0)
                     || (ld_arg == 0);    // ld < 2**24 (parts: each n_i <= ld is checked per part)
    assign arg_err[3] = (sim_ptr[LG_L:0] != 0) || (parts_on && parts_ptr[3:0] != 0);  // DATA_W/8 = 2*LANES bytes
    assign arg_err[4] = (ids_ptr[1:0] != 0) || (gains_ptr[1:0] != 0) || (weights_ptr[1:0] != 0)
                     || (stats_ptr[1:0] != 0);
    assign arg_err[5] = (mode_arg > 2);
    assign arg_err[6] = !parts_on && (mode_arg == 1) && (ssize_arg == 0);

    assign d_n    = desc[31:0];
    assign d_k    = desc[63:32];
    assign d_seed = desc[95:64];
    assign d_ss   = desc[127:96];
    assign d_bad  = (d_n == 0) || (d_n > N_MAX) || (d_n > ld_arg) || (d_k == 0) || (d_k > d_n)
                 || ((mode_arg == 1) && (d_ss == 0));
endmodule
`default_nettype wire
