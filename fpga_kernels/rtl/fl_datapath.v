// fl_datapath: LANES similarity elements per cycle against the on-chip cover vector.
//
//   beat (LANES x s) --S0--> cover RAM read @ beat index ----S1--> LANES x fl_lane
//                                                                 |  \--> cover RAM write (update /
//                                                                 |       weight passes, same address)
//                                                                 v
//                                            fl_add_tree (log2 LANES cycles) --> fl_row_acc --> row
// Cover RAM word b holds elements b*LANES .. b*LANES+LANES-1, each {claimed, cover} (SIM_W+1 bits),
// so one beat of a row (ld % LANES == 0) lines up with one RAM word: no shifting, one port each way.
// Modes (held by the engine for a whole pass): GAIN sums max(0, s-c); UPDATE writes max(c, s);
// WEIGHT counts and claims the elements with s == c not yet claimed. Every mode emits one row
// result per row (UPDATE's sum is meaningless; the engine uses it as "row finished").
// Never stalls: the read master's out_ready is tied high.
`default_nettype none
module fl_datapath #(
    parameter integer LANES  = 32,   // elements per beat; power of two, 2..32
    parameter integer SIM_W  = 16,   // bits of a similarity value; 1..16 (bus = LANES*16 bits)
    parameter integer N_MAX  = 4096, // largest class; power of two, >= 2*LANES
    parameter integer GAIN_W = 40,   // bits of a row sum; >= SIM_W + log2(N_MAX), <= 64
    parameter integer TAG_W  = 12    // bits of the row tag; >= 1
) (
    input  wire                 clk,
    input  wire                 rst,        // synchronous, active high
    input  wire [1:0]           mode,       // 0 GAIN, 1 UPDATE, 2 WEIGHT
    input  wire [$clog2(LANES)-1:0] n_rem,  // n % LANES: lanes used in a row's last beat (0 = all)
    input  wire                 clr_en,     // zero one cover word (start of a run)
    input  wire [$clog2(N_MAX/LANES)-1:0] clr_addr,
    input  wire                 in_valid,
    input  wire [LANES*16-1:0]  in_data,    // element p at bits [p*16 +: SIM_W]
    input  wire                 in_last,    // last beat of a row
    input  wire [TAG_W-1:0]     in_tag,
    output wire                 row_valid,
    output wire [TAG_W-1:0]     row_tag,
    output wire [GAIN_W-1:0]    row_sum
);
    localparam integer AW    = $clog2(N_MAX / LANES);  // cover RAM address bits
    localparam integer CW    = SIM_W + 1;              // {claimed, cover} per lane
    localparam integer TREEW = SIM_W + $clog2(LANES);
    localparam [1:0] M_GAIN = 2'd0, M_UPDATE = 2'd1, M_WEIGHT = 2'd2;

    generate
        if (LANES < 2 || LANES > 32 || (LANES & (LANES - 1)) != 0) begin : g_bad_lanes
            initial $fatal(1, "fl_datapath: LANES=%0d must be a power of two in 2..32", LANES);
        end
        if (SIM_W < 1 || SIM_W > 16) begin : g_bad_sim
            initial $fatal(1, "fl_datapath: SIM_W=%0d must be in 1..16", SIM_W);
        end
        if (N_MAX < 2 * LANES || (N_MAX & (N_MAX - 1)) != 0) begin : g_bad_nmax
            initial $fatal(1, "fl_datapath: N_MAX=%0d must be a power of two >= 2*LANES", N_MAX);
        end
        if (GAIN_W < SIM_W + $clog2(N_MAX) || GAIN_W > 64) begin : g_bad_gain
            initial $fatal(1, "fl_datapath: GAIN_W=%0d must be in %0d..64", GAIN_W, SIM_W + $clog2(N_MAX));
        end
    endgenerate

    // ---- S0: beat index within its row; RAM read issued for it ----
    reg [AW-1:0] bidx;
    always @(posedge clk) begin
        if (rst) bidx <= {AW{1'b0}};
        else if (in_valid) bidx <= in_last ? {AW{1'b0}} : bidx + 1'b1;
    end

    // ---- S1 registers ----
    reg                 s1_valid, s1_last;
    reg [TAG_W-1:0]     s1_tag;
    reg [AW-1:0]        s1_addr;
    reg [LANES*16-1:0]  s1_data;
    reg [LANES-1:0]     s1_mask;
    wire [LANES-1:0] last_mask = (n_rem == 0) ? {LANES{1'b1}}
                                              : ~({LANES{1'b1}} << n_rem);
    always @(posedge clk) begin
        s1_valid <= rst ? 1'b0 : in_valid;
        s1_last  <= in_last;
        s1_tag   <= in_tag;
        s1_addr  <= bidx;
        s1_data  <= in_data;
        s1_mask  <= in_last ? last_mask : {LANES{1'b1}};
    end

    wire [LANES*CW-1:0] ram_q;
    wire [LANES*CW-1:0] upd_word;
    wire [LANES*SIM_W-1:0] vals;

    genvar p;
    generate
        for (p = 0; p < LANES; p = p + 1) begin : lane
            wire [SIM_W-1:0] cov_new;
            wire             clm_new;
            fl_lane #(.SIM_W(SIM_W)) u_lane (
                .s(s1_data[p*16 +: SIM_W]),
                .c(ram_q[p*CW +: SIM_W]),
                .claimed(ram_q[p*CW + SIM_W]),
                .en(s1_mask[p]),
                .weight_mode(mode == M_WEIGHT),
                .val(vals[p*SIM_W +: SIM_W]),
                .cover_new(cov_new),
                .claimed_new(clm_new)
            );
            assign upd_word[p*CW +: CW] = (mode == M_UPDATE) ? {ram_q[p*CW + SIM_W], cov_new}
                                                             : {clm_new, ram_q[p*CW +: SIM_W]};
        end
    endgenerate

    fl_sdp_ram #(.DEPTH(N_MAX / LANES), .WIDTH(LANES * CW)) u_cover (
        .clk(clk),
        .wr_en(clr_en | (s1_valid & (mode != M_GAIN))),
        .wr_addr(clr_en ? clr_addr : s1_addr),
        .wr_data(clr_en ? {LANES*CW{1'b0}} : upd_word),
        .rd_addr(bidx),
        .rd_data(ram_q)
    );

    wire                 t_valid, t_last;
    wire [TAG_W-1:0]     t_tag;
    wire [TREEW-1:0]     t_sum;
    fl_add_tree #(.N(LANES), .W(SIM_W), .TAG_W(TAG_W)) u_tree (
        .clk(clk), .rst(rst),
        .in_valid(s1_valid), .in_last(s1_last), .in_tag(s1_tag), .in_data(vals),
        .out_valid(t_valid), .out_last(t_last), .out_tag(t_tag), .out_sum(t_sum)
    );

    fl_row_acc #(.IN_W(TREEW), .OUT_W(GAIN_W), .TAG_W(TAG_W)) u_acc (
        .clk(clk), .rst(rst),
        .in_valid(t_valid), .in_last(t_last), .in_tag(t_tag), .in_sum(t_sum),
        .out_valid(row_valid), .out_tag(row_tag), .out_sum(row_sum)
    );
endmodule
`default_nettype wire
