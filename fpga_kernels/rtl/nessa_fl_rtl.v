// nessa_fl_rtl: Vitis RTL kernel -- greedy facility location over precomputed similarity rows.
//
// Contract (golden models: host/golden/greedy.py greedy_fixed for mode 0 / 2, host/golden/stochastic.py
// greedy_stochastic_fixed(sim, k, seed, sample_size) for mode 1; results match them bit for bit):
//   sim_ptr      uint16 [n][ld] row-major in DDR, row j = s(j, i) for i < n; columns n..ld-1
//                are padding and never read past ceil(n/LANES) beats. sim_ptr aligned to
//                DATA_W/8 bytes, ld % LANES == 0 (ld a multiple of 32 suits every build).
//   n, k         1 <= k <= n <= N_MAX
//   out_ids_ptr     uint32 [k]  selected candidates in selection order
//   out_gains_ptr   uint64 [k]  marginal gain of each pick (little endian, two words)
//   out_weights_ptr uint32 [k]  members whose most similar selected element is ids[t]
//   out_stats_ptr   uint64 [2]  {status (0 = ok), cycles}, written last (also on refused runs)
//   mode         0 / 2 exact greedy (every unselected candidate per step), 1 stochastic greedy
//   seed         mode 1: xorshift32 seed (uint32)
//   sample_size  mode 1: candidates per step, >= 1 (host: ceil(n / k * ln(1 / epsilon)), capped at n)
//   parts        0: one class as above. P >= 1: a class split into P parts run back to back (no host
//                round trip between them); n, k, seed, sample_size are then ignored and come from
//   parts_ptr    uint32 [P][4] {n_i, k_i, seed_i, sample_size_i} (16-byte aligned): part i's n_i x n_i
//                rows (stride ld >= n_i) follow part i-1's in sim, its k_i results follow part
//                i-1's in out_ids / out_gains / out_weights (ids local to the part).
//   Register map: fl_axil_ctrl.v. Bad arguments: ap_done with status != 0, only stats written.
//
//   s_axi_control --> fl_axil_ctrl --(args, ap_start)--> fl_engine --(jobs)--> fl_axi_rd --AR/R--> m_axi_gmem
//                                                          |   ^                 | beats
//                                                          |   +-- row sums -- fl_datapath (LANES lanes,
//                                                          |                    cover RAM, adder tree)
//                                                          +--(words)--> fl_axi_wr --AW/W/B--> m_axi_gmem
// Parallelism: LANES elements of one row per cycle (the bus is 16*LANES bits; 32 lanes = 512 bits).
// Cycles per candidate evaluation = ceil(n/LANES) beats once rows stream (up to OUTSTANDING bursts in
// flight hide the read latency; see README.md).
`default_nettype none
module nessa_fl_rtl #(
    parameter integer LANES     = 32,   // similarity elements per cycle; power of two, 2..32
    parameter integer N_MAX     = 8192, // largest class (on-chip cover/table depth); power of two, 2*LANES..2**20
    parameter integer GAIN_W    = 40,   // gain accumulator bits; 16 + log2(N_MAX) .. 64 (never overflows)
    parameter integer MAX_BURST = 64,   // longest AXI read burst in beats; power of two, 1..256
    parameter integer RNG_BPC   = 2,    // stochastic draw: remainder bits per cycle (fl_urem); 1, 2, 4, 8
    parameter integer RNG_UNITS = 4,    // stochastic draw: fl_urem units computing remainders ahead (fl_draws); 1..32
    parameter integer OUTSTANDING = 8,  // read bursts in flight (fl_axi_rd): >= (DDR latency + row) / row cycles streams rows; 1..64
    parameter integer C_M_AXI_GMEM_ADDR_WIDTH = 64,  // m_axi address bits; 32..64
    parameter integer C_M_AXI_GMEM_DATA_WIDTH = 16 * LANES, // m_axi data bits; must equal 16*LANES
    parameter integer C_S_AXI_CONTROL_ADDR_WIDTH = 12 // s_axi_control address bits; 7..12 (12: the 4 KiB range in kernel.xml)
) (
    input  wire                ap_clk,
    input  wire                ap_rst_n,       // synchronous, active low
    // lint: 'interrupt' is the port name Vitis requires of an RTL kernel
    // verilator lint_off SYMRSVDWORD
    output wire                interrupt,
    // verilator lint_on SYMRSVDWORD
    // AXI4 master (DDR)
    output wire                m_axi_gmem_awvalid,
    input  wire                m_axi_gmem_awready,
    output wire [C_M_AXI_GMEM_ADDR_WIDTH-1:0] m_axi_gmem_awaddr,
    output wire [7:0]          m_axi_gmem_awlen,
    output wire [2:0]          m_axi_gmem_awsize,
    output wire [1:0]          m_axi_gmem_awburst,
    output wire [0:0]          m_axi_gmem_awid,
    output wire [3:0]          m_axi_gmem_awcache,
    output wire [2:0]          m_axi_gmem_awprot,
    output wire                m_axi_gmem_wvalid,
    input  wire                m_axi_gmem_wready,
    output wire [C_M_AXI_GMEM_DATA_WIDTH-1:0]   m_axi_gmem_wdata,
    output wire [C_M_AXI_GMEM_DATA_WIDTH/8-1:0] m_axi_gmem_wstrb,
    output wire                m_axi_gmem_wlast,
    input  wire                m_axi_gmem_bvalid,
    output wire                m_axi_gmem_bready,
    input  wire [1:0]          m_axi_gmem_bresp,
    input  wire [0:0]          m_axi_gmem_bid,
    output wire                m_axi_gmem_arvalid,
    input  wire                m_axi_gmem_arready,
    output wire [C_M_AXI_GMEM_ADDR_WIDTH-1:0] m_axi_gmem_araddr,
    output wire [7:0]          m_axi_gmem_arlen,
    output wire [2:0]          m_axi_gmem_arsize,
    output wire [1:0]          m_axi_gmem_arburst,
    output wire [0:0]          m_axi_gmem_arid,
    output wire [3:0]          m_axi_gmem_arcache,
    output wire [2:0]          m_axi_gmem_arprot,
    input  wire                m_axi_gmem_rvalid,
    output wire                m_axi_gmem_rready,
    input  wire [C_M_AXI_GMEM_DATA_WIDTH-1:0] m_axi_gmem_rdata,
    input  wire [1:0]          m_axi_gmem_rresp,
    input  wire                m_axi_gmem_rlast,
    input  wire [0:0]          m_axi_gmem_rid,
    // AXI4-Lite control
    input  wire                s_axi_control_awvalid,
    output wire                s_axi_control_awready,
    input  wire [C_S_AXI_CONTROL_ADDR_WIDTH-1:0] s_axi_control_awaddr,
    input  wire                s_axi_control_wvalid,
    output wire                s_axi_control_wready,
    input  wire [31:0]         s_axi_control_wdata,
    input  wire [3:0]          s_axi_control_wstrb,
    output wire                s_axi_control_bvalid,
    input  wire                s_axi_control_bready,
    output wire [1:0]          s_axi_control_bresp,
    input  wire                s_axi_control_arvalid,
    output wire                s_axi_control_arready,
    input  wire [C_S_AXI_CONTROL_ADDR_WIDTH-1:0] s_axi_control_araddr,
    output wire                s_axi_control_rvalid,
    input  wire                s_axi_control_rready,
    output wire [31:0]         s_axi_control_rdata,
    output wire [1:0]          s_axi_control_rresp
);
    localparam integer DATA_W = 16 * LANES;
    localparam integer IDX_W  = $clog2(N_MAX);
    localparam integer BW     = $clog2(N_MAX / LANES) + 1;

    generate
        if (C_M_AXI_GMEM_DATA_WIDTH != 16 * LANES) begin : g_bad_width
            initial $fatal(1, "nessa_fl_rtl: C_M_AXI_GMEM_DATA_WIDTH=%0d must equal 16*LANES=%0d",
                           C_M_AXI_GMEM_DATA_WIDTH, 16 * LANES);
        end
    endgenerate
    // LANES, N_MAX, GAIN_W, address widths and MAX_BURST are checked by the sub-modules.

    // lint: power-up value: the FPGA configures the register to 1, so the engine is held in reset until ap_rst_n is sampled
    // verilator lint_off PROCASSINIT
    reg rst = 1'b1;  // registered reset: one fan-out point, released a cycle after ap_rst_n
    // verilator lint_on PROCASSINIT
    always @(posedge ap_clk) rst <= ~ap_rst_n;

    wire        ap_start, ap_done, ap_idle, ap_ready;
    wire [63:0] sim_ptr, ids_ptr, gains_ptr, weights_ptr, stats_ptr, cycles, parts_ptr;
    wire [31:0] n_arg, k_arg, ld_arg, status, mode_arg, seed_arg, ssize_arg, parts_arg;

    fl_axil_ctrl #(.C_ADDR_W(C_S_AXI_CONTROL_ADDR_WIDTH)) u_ctrl (
        .clk(ap_clk), .rst(rst),
        .s_axi_awvalid(s_axi_control_awvalid), .s_axi_awready(s_axi_control_awready),
        .s_axi_awaddr(s_axi_control_awaddr),
        .s_axi_wvalid(s_axi_control_wvalid), .s_axi_wready(s_axi_control_wready),
        .s_axi_wdata(s_axi_control_wdata), .s_axi_wstrb(s_axi_control_wstrb),
        .s_axi_bvalid(s_axi_control_bvalid), .s_axi_bready(s_axi_control_bready),
        .s_axi_bresp(s_axi_control_bresp),
        .s_axi_arvalid(s_axi_control_arvalid), .s_axi_arready(s_axi_control_arready),
        .s_axi_araddr(s_axi_control_araddr),
        .s_axi_rvalid(s_axi_control_rvalid), .s_axi_rready(s_axi_control_rready),
        .s_axi_rdata(s_axi_control_rdata), .s_axi_rresp(s_axi_control_rresp),
        .ap_start(ap_start), .ap_done(ap_done), .ap_idle(ap_idle), .ap_ready(ap_ready),
        .interrupt(interrupt),
        .sim_ptr(sim_ptr), .n(n_arg), .k(k_arg), .ld(ld_arg),
        .out_ids_ptr(ids_ptr), .out_gains_ptr(gains_ptr), .out_weights_ptr(weights_ptr),
        .out_stats_ptr(stats_ptr),
        .mode(mode_arg), .seed(seed_arg), .sample_size(ssize_arg),
        .parts(parts_arg), .parts_ptr(parts_ptr),
        .status(status), .cycles(cycles)
    );

    wire                 job_valid, job_ready, rd_err, wr_err;
    wire [C_M_AXI_GMEM_ADDR_WIDTH-1:0] job_addr, wr_addr;
    wire [BW-1:0]        job_beats;
    wire [IDX_W-1:0]     job_tag, row_tag;
    wire [1:0]           mode;
    wire [$clog2(LANES)-1:0] n_rem;
    wire                 clr_en, row_valid, wr_valid, wr_ready, wr_idle;
    wire [BW-2:0]        clr_addr;
    wire [GAIN_W-1:0]    row_sum;
    wire [31:0]          wr_data;
    wire                 beat_valid, beat_last;
    wire [DATA_W-1:0]    beat_data;
    wire [IDX_W-1:0]     beat_tag;

    fl_engine #(.LANES(LANES), .N_MAX(N_MAX), .GAIN_W(GAIN_W), .ADDR_W(C_M_AXI_GMEM_ADDR_WIDTH),
                .RNG_BPC(RNG_BPC), .RNG_UNITS(RNG_UNITS)) u_engine (
        .clk(ap_clk), .rst(rst),
        .ap_start(ap_start), .ap_done(ap_done), .ap_idle(ap_idle), .ap_ready(ap_ready),
        .sim_ptr(sim_ptr), .n_arg(n_arg), .k_arg(k_arg), .ld_arg(ld_arg),
        .ids_ptr(ids_ptr), .gains_ptr(gains_ptr), .weights_ptr(weights_ptr), .stats_ptr(stats_ptr),
        .mode_arg(mode_arg), .seed_arg(seed_arg), .ssize_arg(ssize_arg),
        .parts_arg(parts_arg), .parts_ptr(parts_ptr),
        .status(status), .cycles(cycles),
        .job_valid(job_valid), .job_ready(job_ready), .job_addr(job_addr),
        .job_beats(job_beats), .job_tag(job_tag), .rd_err(rd_err),
        .beat_valid(beat_valid), .beat_data(beat_data),
        .mode(mode), .n_rem(n_rem), .clr_en(clr_en), .clr_addr(clr_addr),
        .row_valid(row_valid), .row_tag(row_tag), .row_sum(row_sum),
        .wr_valid(wr_valid), .wr_ready(wr_ready), .wr_addr(wr_addr), .wr_data(wr_data),
        .wr_idle(wr_idle), .wr_err(wr_err)
    );

    fl_axi_rd #(.ADDR_W(C_M_AXI_GMEM_ADDR_WIDTH), .DATA_W(DATA_W), .BEATS_W(BW),
                .TAG_W(IDX_W), .MAX_BURST(MAX_BURST), .OUTSTANDING(OUTSTANDING)) u_rd (
        .clk(ap_clk), .rst(rst),
        .job_valid(job_valid), .job_ready(job_ready), .job_addr(job_addr),
        .job_beats(job_beats), .job_tag(job_tag),
        .out_valid(beat_valid), .out_ready(1'b1), .out_data(beat_data),
        // lint: the read master's busy flag is not needed at the top (the engine tracks its jobs)
        // verilator lint_off PINCONNECTEMPTY
        .out_last(beat_last), .out_tag(beat_tag), .busy(), .err(rd_err),
        // verilator lint_on PINCONNECTEMPTY
        .m_axi_arvalid(m_axi_gmem_arvalid), .m_axi_arready(m_axi_gmem_arready),
        .m_axi_araddr(m_axi_gmem_araddr), .m_axi_arlen(m_axi_gmem_arlen),
        .m_axi_arsize(m_axi_gmem_arsize), .m_axi_arburst(m_axi_gmem_arburst),
        .m_axi_arid(m_axi_gmem_arid), .m_axi_arcache(m_axi_gmem_arcache),
        .m_axi_arprot(m_axi_gmem_arprot),
        .m_axi_rvalid(m_axi_gmem_rvalid), .m_axi_rready(m_axi_gmem_rready),
        .m_axi_rdata(m_axi_gmem_rdata), .m_axi_rresp(m_axi_gmem_rresp),
        .m_axi_rlast(m_axi_gmem_rlast), .m_axi_rid(m_axi_gmem_rid)
    );

    fl_datapath #(.LANES(LANES), .SIM_W(16), .N_MAX(N_MAX), .GAIN_W(GAIN_W), .TAG_W(IDX_W)) u_dp (
        .clk(ap_clk), .rst(rst), .mode(mode), .n_rem(n_rem),
        .clr_en(clr_en), .clr_addr(clr_addr),
        .in_valid(beat_valid), .in_data(beat_data), .in_last(beat_last), .in_tag(beat_tag),
        .row_valid(row_valid), .row_tag(row_tag), .row_sum(row_sum)
    );

    fl_axi_wr #(.ADDR_W(C_M_AXI_GMEM_ADDR_WIDTH), .DATA_W(DATA_W)) u_wr (
        .clk(ap_clk), .rst(rst),
        .req_valid(wr_valid), .req_ready(wr_ready), .req_addr(wr_addr), .req_data(wr_data),
        .idle(wr_idle), .err(wr_err),
        .m_axi_awvalid(m_axi_gmem_awvalid), .m_axi_awready(m_axi_gmem_awready),
        .m_axi_awaddr(m_axi_gmem_awaddr), .m_axi_awlen(m_axi_gmem_awlen),
        .m_axi_awsize(m_axi_gmem_awsize), .m_axi_awburst(m_axi_gmem_awburst),
        .m_axi_awid(m_axi_gmem_awid), .m_axi_awcache(m_axi_gmem_awcache),
        .m_axi_awprot(m_axi_gmem_awprot),
        .m_axi_wvalid(m_axi_gmem_wvalid), .m_axi_wready(m_axi_gmem_wready),
        .m_axi_wdata(m_axi_gmem_wdata), .m_axi_wstrb(m_axi_gmem_wstrb),
        .m_axi_wlast(m_axi_gmem_wlast),
        .m_axi_bvalid(m_axi_gmem_bvalid), .m_axi_bready(m_axi_gmem_bready),
        .m_axi_bresp(m_axi_gmem_bresp), .m_axi_bid(m_axi_gmem_bid)
    );
endmodule
`default_nettype wire
