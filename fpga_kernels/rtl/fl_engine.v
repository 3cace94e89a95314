// fl_engine: the greedy facility-location controller (one class per run).
//
//   CHECK args --> CLEAR cover + table (n cycles)
//   repeat k times:                                   (greedy step t)
//     exact (mode 0 / 2):
//     SCAN  j = 0..n-1, skip selected --> row job j --> datapath GAIN --> fl_argmax (ties: lowest j)
//     stochastic (mode 1; host/golden/stochastic.py): cnt = min(sample_size, m), for r < cnt:
//     fl_pool: draw x % (m - r) (fl_draws, computed ahead), p = r + it, swap pool[r] <-> pool[p]
//           --> row job pool[r] --> datapath GAIN --> fl_argmax (ties: lowest j; aux = r)
//     WAIT  all rows summed --> fl_results: ids[t], gains[t] (lo, hi) --> mark j* {selected, pos = t}
//           (stochastic: fl_pool removes j*, pool[r*] = pool[m-1], m -= 1, as the gain's last word goes)
//     UPDATE row j* through the datapath: cover = max(cover, row)
//   WEIGHTS j = 0..n-1 ascending, selected only --> datapath WEIGHT (count + claim s == cover)
//           --> fl_results: weights[pos(j)]
//   FINISH (all writes answered) --> fl_results: stats = {status, cycles} --> ap_done / ap_ready
// With parts = P >= 1 the run is P classes back to back (a class split into parts): before each,
//   FETCH part i's descriptor {n, k, seed, sample_size} (16 bytes at parts_ptr + 16 i, one row
//   job through the read master; its beats are captured here, the datapath's sum is ignored),
//   CHECK it, then CLEAR .. WEIGHTS as above on rows at sim_ptr + (sum of earlier n) * ld * 2, with
//   results at ids/gains/weights + (sum of earlier k) elements; cover, table, pool and the draws
//   restart per part. stats and the cycle count cover the whole run.
// Row jobs are issued ahead: candidate j+1's job goes out as soon as it is known (exact: the next
// unselected j; stochastic: the next draw's swap), while rows already issued are still in flight --
// fl_axi_rd keeps up to OUTSTANDING bursts outstanding and accepts the next job once the previous
// one's ARs are out. The datapath takes the beats in issue order (one AXI ID), each row with its
// tag, so fl_argmax sees the same rows as before, and WAIT_ROWS waits for received == issued. A
// stream of rows thus pays the read latency once per greedy step, not once per row.
// Stochastic candidates come from fl_pool (its draws start in CHECK and run ahead through step
// boundaries), so a draw costs max(5, row read) cycles once RNG_UNITS >= (32/RNG_BPC + 1) / 5;
// schedule.py models it exactly.
// status bits (0 = ok): 0-6 the argument checks (fl_arg_check.v; the run is refused: nothing is read,
// only the stats words are written, unless out_stats_ptr is the misaligned one), 7 a part descriptor
// is bad (earlier parts' results are written, the run stops), 8 AXI read / 9 AXI write error.
// cycles counts from ap_start's acceptance to the last result word answered (stats excluded).
`default_nettype none
module fl_engine #(
    parameter integer LANES  = 32,   // elements per beat (bus = 16*LANES bits); power of two, 2..32
    parameter integer N_MAX  = 4096, // largest class (cover / table depth); power of two, >= 2*LANES
    parameter integer GAIN_W = 40,   // bits of a gain; >= 16 + log2(N_MAX), <= 64
    parameter integer ADDR_W = 64,   // AXI address bits; 32..64
    parameter integer RNG_BPC = 2,   // stochastic mode: remainder bits per cycle of each fl_urem; 1, 2, 4, 8
    parameter integer RNG_UNITS = 4  // stochastic mode: fl_urem units of fl_draws (remainders in flight); 1..32
) (
    input  wire                 clk,
    input  wire                 rst,            // synchronous, active high
    // ap_ctrl_hs
    input  wire                 ap_start,
    output wire                 ap_done,
    output wire                 ap_idle,
    output wire                 ap_ready,
    // arguments (stable while running)
    input  wire [63:0]          sim_ptr,
    input  wire [31:0]          n_arg,
    input  wire [31:0]          k_arg,
    input  wire [31:0]          ld_arg,
    input  wire [63:0]          ids_ptr,
    input  wire [63:0]          gains_ptr,
    input  wire [63:0]          weights_ptr,
    input  wire [63:0]          stats_ptr,
    input  wire [31:0]          mode_arg,       // 0 / 2 exact greedy, 1 stochastic greedy
    input  wire [31:0]          seed_arg,       // stochastic: PRNG seed
    input  wire [31:0]          ssize_arg,      // stochastic: candidates per step (>= 1)
    input  wire [31:0]          parts_arg,      // 0: one class; P >= 1: P parts from the descriptors
    input  wire [63:0]          parts_ptr,      // uint32 [P][4] {n, k, seed, sample_size}, 16-byte aligned
    output reg  [31:0]          status,
    output reg  [63:0]          cycles,
    // read master jobs
    output reg                  job_valid,
    input  wire                 job_ready,
    output reg  [ADDR_W-1:0]    job_addr,
    output wire [$clog2(N_MAX/LANES):0] job_beats,
    output reg  [$clog2(N_MAX)-1:0] job_tag,
    input  wire                 rd_err,
    input  wire                 beat_valid,     // read master output (a part descriptor's beats are taken here)
    input  wire [16*LANES-1:0]  beat_data,
    // datapath
    output reg  [1:0]           mode,
    output wire [$clog2(LANES)-1:0] n_rem,
    output wire                 clr_en,
    output wire [$clog2(N_MAX/LANES)-1:0] clr_addr,
    input  wire                 row_valid,
    input  wire [$clog2(N_MAX)-1:0] row_tag,
    input  wire [GAIN_W-1:0]    row_sum,
    // write master
    output wire                 wr_valid,       // (fl_results)
    input  wire                 wr_ready,
    output wire [ADDR_W-1:0]    wr_addr,
    output wire [31:0]          wr_data,
    input  wire                 wr_idle,
    input  wire                 wr_err
);
    localparam integer IDX_W = $clog2(N_MAX);          // candidate index bits
    localparam integer CNT_W = IDX_W + 1;              // counts up to N_MAX
    localparam integer LG_L  = $clog2(LANES);
    localparam integer BW    = $clog2(N_MAX / LANES) + 1;
    localparam [1:0] M_GAIN = 2'd0, M_UPDATE = 2'd1, M_WEIGHT = 2'd2;
    localparam integer DATA_W = 16 * LANES;
    localparam integer DESC_BEATS = (DATA_W >= 128) ? 1 : 128 / DATA_W;   // beats of one descriptor
    localparam integer SEL_W = (DATA_W > 128) ? $clog2(DATA_W / 128) : 1; // descriptor slot in a beat

    generate
        if (LANES < 2 || LANES > 32 || (LANES & (LANES - 1)) != 0) begin : g_bad_lanes
            initial $fatal(1, "fl_engine: LANES=%0d must be a power of two in 2..32", LANES);
        end
        if (N_MAX < 2 * LANES || N_MAX > (1 << 20) || (N_MAX & (N_MAX - 1)) != 0) begin : g_bad_nmax
            initial $fatal(1, "fl_engine: N_MAX=%0d must be a power of two in 2*LANES..2**20", N_MAX);
        end
        if (GAIN_W < 16 + $clog2(N_MAX) || GAIN_W > 64) begin : g_bad_gain
            initial $fatal(1, "fl_engine: GAIN_W=%0d must be in %0d..64", GAIN_W, 16 + $clog2(N_MAX));
        end
        if (ADDR_W < 32 || ADDR_W > 64) begin : g_bad_addr
            initial $fatal(1, "fl_engine: ADDR_W=%0d must be in 32..64", ADDR_W);
        end
        if (!(RNG_BPC == 1 || RNG_BPC == 2 || RNG_BPC == 4 || RNG_BPC == 8)) begin : g_bad_bpc
            initial $fatal(1, "fl_engine: RNG_BPC=%0d must be 1, 2, 4 or 8", RNG_BPC);
        end
        if (RNG_UNITS < 1 || RNG_UNITS > 32) begin : g_bad_units
            initial $fatal(1, "fl_engine: RNG_UNITS=%0d must be in 1..32", RNG_UNITS);
        end
    endgenerate

    localparam [5:0] S_IDLE = 0, S_CHECK = 1, S_CLEAR = 2, S_ITER = 3, S_SCAN_RD = 4, S_SCAN_CHK = 5,
                     S_SCAN_ISSUE = 6, S_WAIT_ROWS = 7, S_WR_RES = 8, S_SEL_SET = 9, S_UPD_ISSUE = 10,
                     S_UPD_WAIT = 11, S_W_SCAN_RD = 12, S_W_SCAN_CHK = 13, S_W_ISSUE = 14, S_W_WAIT = 15,
                     S_W_WRITE = 16, S_FINISH = 17, S_STATS = 18, S_DRAIN = 19, S_DONE = 20,
                     S_SM_WAIT = 21, S_SM_CHK = 22, S_SM_ISSUE = 23, S_P_FETCH = 24, S_P_ISSUE = 25,
                     S_P_WAIT = 26, S_P_LOAD = 27, S_P_GO = 28, S_P_NEXT = 29, S_P_ADV = 30;
    reg [5:0] state;

    // latched arguments
    reg [ADDR_W-1:0] sim_a;
    reg              counting;                  // cycles still running
    reg [CNT_W-1:0]  n, k;
    reg [33:0]       row_bytes;                 // ld * 2
    reg [BW-1:0]     nbeats;                    // ceil(n / LANES)
    reg [31:0]       seed_r, ss_r;              // seed, sample_size of this class / part
    // parts
    reg              pmode;                     // parts >= 1
    reg [31:0]       parts_left;                // parts not yet finished, this one included
    reg [ADDR_W-1:0] desc_a;                    // this part's descriptor
    // lint: read only when a bus word holds several descriptors (DATA_W > 128)
    // verilator lint_off UNUSEDSIGNAL
    reg [SEL_W-1:0]  desc_sel;                  // its 16-byte slot in a bus word (DATA_W > 128)
    // verilator lint_on UNUSEDSIGNAL
    reg [127:0]      desc;                      // captured descriptor {ss, seed, k, n}
    reg              part_err;                  // the captured descriptor is bad
    reg              fetching;                  // the row job in flight is a descriptor

    // loop state
    reg [CNT_W-1:0]  j, t;                      // candidate, greedy step
    reg [CNT_W-1:0]  issued, received;          // rows of the current pass
    reg [IDX_W+33:0] prod;                      // j * row_bytes (one multiply per candidate)
    reg              arg_clear;                 // fl_argmax clear pulse

    // sub-module outputs (instances below)
    wire [6:0]       arg_err;                   // fl_arg_check: argument checks
    // lint: every pass delivers at least one row, so the argmax is always valid when read
    // verilator lint_off UNUSEDSIGNAL
    wire             best_valid;                // fl_argmax (unused: every pass has a row)
    // verilator lint_on UNUSEDSIGNAL
    wire [GAIN_W-1:0] best_val;
    wire [IDX_W-1:0] best_idx, best_pos;        // the step's pick and (stochastic) its pool position
    wire             stats_ok, res_done;        // fl_results: out_stats_ptr 4-byte aligned; a result written

    // stochastic mode: the pool of unselected candidates and its draws (fl_pool)
    reg              stoch;                     // this run is mode 1
    // lint: every run takes all of its draws, so the pool is idle whenever the engine is
    // verilator lint_off UNUSEDSIGNAL
    wire             cand_valid, cand_last, pool_idle;   // pool_idle unused: every run takes its draws
    // verilator lint_on UNUSEDSIGNAL
    wire [IDX_W-1:0] cand;
    fl_pool #(.N_MAX(N_MAX), .BPC(RNG_BPC), .UNITS(RNG_UNITS)) u_pool (
        .clk(clk), .rst(rst), .seed(seed_r), .n(n), .k(k), .ssize(ss_r),
        .start(((state == S_CHECK && arg_err == 0 && !pmode) || (state == S_P_GO && !part_err)) && mode_arg == 1),
        .clr_en(state == S_CLEAR), .clr_idx(j[IDX_W-1:0]), .step(state == S_ITER && stoch),
        .cand_valid(cand_valid), .cand(cand), .last(cand_last), .next(state == S_SM_ISSUE && job_ready),
        .remove(state == S_WR_RES && res_done && stoch), .remove_pos(best_pos), .idle(pool_idle)
    );

    // {selected, pos} per candidate
    reg              tb_we;
    reg [IDX_W-1:0]  tb_waddr;
    reg [IDX_W:0]    tb_wdata;
    wire [IDX_W:0]   tb_q;
    fl_sdp_ram #(.DEPTH(N_MAX), .WIDTH(IDX_W + 1)) u_table (
        .clk(clk), .wr_en(tb_we), .wr_addr(tb_waddr), .wr_data(tb_wdata),
        .rd_addr(j[IDX_W-1:0]), .rd_data(tb_q)
    );
    wire tb_selected = tb_q[IDX_W];

    // lint: gains and counts are zero-extended to the 64-bit result words; a weight count (<= N_MAX) uses the low word only
    // verilator lint_off WIDTHEXPAND
    // verilator lint_off UNUSEDSIGNAL
    wire [63:0]      best64 = best_val;         // zero-extended for the two gain words
    wire [63:0]      sum64  = row_sum;          // zero-extended weight count
    // verilator lint_on WIDTHEXPAND
    // verilator lint_on UNUSEDSIGNAL
    fl_results #(.N_MAX(N_MAX), .ADDR_W(ADDR_W)) u_results (
        .clk(clk), .rst(rst), .load(state == S_IDLE && ap_start), .ids_ptr(ids_ptr), .gains_ptr(gains_ptr),
        .weights_ptr(weights_ptr), .stats_ptr(stats_ptr), .stats_ok(stats_ok),
        .advance(state == S_P_NEXT), .adv_k(k),
        .step_wr(state == S_WAIT_ROWS && received == issued && !row_valid), .t(t), .idx(best_idx), .gain(best64),
        .weight_wr(state == S_W_WAIT && row_valid), .pos(row_tag), .count(sum64[31:0]),
        .stats_wr(state == S_STATS), .status(status), .cycles(cycles), .done(res_done),
        .wr_valid(wr_valid), .wr_ready(wr_ready), .wr_addr(wr_addr), .wr_data(wr_data)
    );
    fl_argmax #(.VAL_W(GAIN_W), .IDX_W(IDX_W), .AUX_W(IDX_W)) u_argmax (
        .clk(clk), .rst(rst), .clear(arg_clear),
        .in_valid(row_valid && mode == M_GAIN), .in_val(row_sum), .in_idx(row_tag),
        .in_aux(received[IDX_W-1:0]),          // rows come back in issue order: received = r
        .best_valid(best_valid), .best_val(best_val), .best_idx(best_idx), .best_aux(best_pos)
    );

    assign ap_idle   = (state == S_IDLE);
    assign ap_done   = (state == S_DONE);
    assign ap_ready  = (state == S_DONE);
    assign job_beats = fetching ? DESC_BEATS[BW-1:0] : nbeats;
    assign n_rem     = n[LG_L-1:0];
    // lint: beat counter compared with the narrower beat count; unsigned, zero extension intended
    // verilator lint_off WIDTHEXPAND
    assign clr_en    = (state == S_CLEAR) && (j < nbeats);
    // verilator lint_on WIDTHEXPAND
    assign clr_addr  = j[BW-2:0];

    // argument checks (on the live registers, taken in S_CHECK) and a part descriptor's checks
    // lint: a checked descriptor's n and k are < 2**CNT_W; the registers take CNT_W bits
    // verilator lint_off UNUSEDSIGNAL
    wire [31:0] d_n, d_k, d_seed, d_ss;
    // verilator lint_on UNUSEDSIGNAL
    wire        d_bad;
    fl_arg_check #(.LANES(LANES), .N_MAX(N_MAX)) u_check (
        .n_arg(n_arg), .k_arg(k_arg), .ld_arg(ld_arg), .sim_ptr(sim_ptr), .ids_ptr(ids_ptr),
        .gains_ptr(gains_ptr), .weights_ptr(weights_ptr), .stats_ptr(stats_ptr), .mode_arg(mode_arg),
        .ssize_arg(ssize_arg), .parts_arg(parts_arg), .parts_ptr(parts_ptr), .desc(desc),
        .arg_err(arg_err), .d_n(d_n), .d_k(d_k), .d_seed(d_seed), .d_ss(d_ss), .d_bad(d_bad)
    );
    wire [5:0] end_state = (pmode && parts_left != 1) ? S_P_NEXT : S_FINISH;   // after a weight pass

    wire last_j = (j + 1'b1 == n);

    // a descriptor's beat(s), little endian: its 16-byte slot of one bus word, or DESC_BEATS words
    wire desc_beat = (state == S_P_WAIT) && beat_valid;
    generate
        if (DATA_W > 128) begin : g_desc_slot
            always @(posedge clk) if (desc_beat) desc <= beat_data[desc_sel * 128 +: 128];
        end else if (DATA_W == 128) begin : g_desc_word
            always @(posedge clk) if (desc_beat) desc <= beat_data;
        end else begin : g_desc_shift
            always @(posedge clk) if (desc_beat) desc <= {beat_data, desc[127:DATA_W]};
        end
    endgenerate

    always @(posedge clk) begin
        tb_we     <= 1'b0;
        arg_clear <= 1'b0;
        if (rst) begin
            state     <= S_IDLE;
            status    <= 32'd0;
            cycles    <= 64'd0;
            job_valid <= 1'b0;
            mode      <= M_GAIN;
        end else begin
            if (state != S_IDLE && counting) cycles <= cycles + 1'b1;
            if (row_valid) received <= received + 1'b1;
            case (state)
                S_IDLE: if (ap_start) begin
                    cycles    <= 64'd1;
                    counting  <= 1'b1;
                    sim_a     <= sim_ptr[ADDR_W-1:0];
                    n         <= n_arg[CNT_W-1:0];
                    k         <= k_arg[CNT_W-1:0];
                    row_bytes <= {1'b0, ld_arg, 1'b0};
                    // lint: ceil(n / LANES) in integer arithmetic, then the beat-count width (n <= N_MAX was checked)
                    // verilator lint_off WIDTHEXPAND
                    // verilator lint_off WIDTHTRUNC
                    nbeats    <= (n_arg[BW+LG_L-1:0] + LANES - 1) >> LG_L;
                    // verilator lint_on WIDTHEXPAND
                    // verilator lint_on WIDTHTRUNC
                    seed_r    <= seed_arg;
                    ss_r      <= ssize_arg;
                    pmode     <= (parts_arg != 0);
                    parts_left <= parts_arg;
                    desc_a    <= parts_ptr[ADDR_W-1:0];
                    fetching  <= 1'b0;
                    state     <= S_CHECK;
                end
                S_CHECK: begin
                    status <= {25'd0, arg_err};
                    stoch  <= (mode_arg == 1);
                    j      <= {CNT_W{1'b0}};
                    t      <= {CNT_W{1'b0}};
                    mode   <= M_GAIN;
                    state  <= (arg_err != 0) ? S_FINISH : (pmode ? S_P_FETCH : S_CLEAR);
                end
                // ---- parts: fetch, check and load part i's descriptor ----
                S_P_FETCH: begin
                    job_valid <= 1'b1;
                    // lint: the integer bus-word mask is extended to the address width
                    // verilator lint_off WIDTHEXPAND
                    job_addr  <= desc_a & ~(DATA_W / 8 - 1);  // the bus word holding it
                    // verilator lint_on WIDTHEXPAND
                    if (DATA_W > 128) desc_sel <= desc_a[SEL_W+3:4];
                    fetching  <= 1'b1;
                    mode      <= M_GAIN;                     // no cover writes; the sum is ignored
                    state     <= S_P_ISSUE;
                end
                S_P_ISSUE: if (job_ready) begin
                    job_valid <= 1'b0;
                    state     <= S_P_WAIT;
                end
                S_P_WAIT: if (row_valid) begin              // all its beats have passed (captured below)
                    fetching <= 1'b0;
                    state    <= S_P_LOAD;
                end
                S_P_LOAD: begin
                    n        <= d_n[CNT_W-1:0];
                    k        <= d_k[CNT_W-1:0];
                    seed_r   <= d_seed;
                    ss_r     <= d_ss;
                    // lint: ceil(n / LANES) in integer arithmetic, then the beat-count width (n <= N_MAX was checked)
                    // verilator lint_off WIDTHEXPAND
                    // verilator lint_off WIDTHTRUNC
                    nbeats   <= (d_n[BW+LG_L-1:0] + LANES - 1) >> LG_L;
                    // verilator lint_on WIDTHEXPAND
                    // verilator lint_on WIDTHTRUNC
                    part_err <= d_bad;
                    state    <= S_P_GO;
                end
                S_P_GO: begin                               // fl_draws starts here (draws_start)
                    if (part_err) begin
                        status <= status | 32'h80;
                        state  <= S_FINISH;
                    end else begin
                        j     <= {CNT_W{1'b0}};
                        t     <= {CNT_W{1'b0}};
                        state <= S_CLEAR;
                    end
                end
                S_P_NEXT: begin                             // advance to the next part's rows and results
                    prod       <= n * row_bytes;
                    desc_a     <= desc_a + 16;
                    parts_left <= parts_left - 1'b1;
                    state      <= S_P_ADV;
                end
                S_P_ADV: begin
                    // lint: row offset j * row_bytes is zero-extended to the address width (a 32-bit address build wraps mod 2**ADDR_W)
                    // verilator lint_off WIDTHEXPAND
                    // verilator lint_off WIDTHTRUNC
                    sim_a <= sim_a + prod;
                    // verilator lint_on WIDTHEXPAND
                    // verilator lint_on WIDTHTRUNC
                    state <= S_P_FETCH;
                end
                S_CLEAR: begin                    // table[j] = 0, pool[j] = j (fl_pool), cover word j = 0
                    tb_we    <= 1'b1;
                    tb_waddr <= j[IDX_W-1:0];
                    tb_wdata <= {(IDX_W+1){1'b0}};
                    j        <= last_j ? {CNT_W{1'b0}} : j + 1'b1;
                    if (last_j) state <= S_ITER;
                end
                S_ITER: begin                               // start greedy step t (fl_pool: step)
                    arg_clear <= 1'b1;
                    j         <= {CNT_W{1'b0}};
                    issued    <= {CNT_W{1'b0}};
                    received  <= {CNT_W{1'b0}};
                    state     <= stoch ? S_SM_WAIT : S_SCAN_RD;
                end
                // ---- stochastic: fl_pool's candidate (3 cycles after its remainder) --> row job ----
                S_SM_WAIT: if (cand_valid) begin
                    prod    <= cand * row_bytes;
                    job_tag <= cand;
                    state   <= S_SM_CHK;
                end
                S_SM_CHK: begin                             // fl_pool: second half of the swap
                    job_valid <= 1'b1;
                    // lint: row offset j * row_bytes is zero-extended to the address width (a 32-bit address build wraps mod 2**ADDR_W)
                    // verilator lint_off WIDTHEXPAND
                    // verilator lint_off WIDTHTRUNC
                    job_addr  <= sim_a + prod;
                    // verilator lint_on WIDTHEXPAND
                    // verilator lint_on WIDTHTRUNC
                    state     <= S_SM_ISSUE;
                end
                S_SM_ISSUE: if (job_ready) begin            // fl_pool: next
                    job_valid <= 1'b0;
                    issued    <= issued + 1'b1;
                    state     <= cand_last ? S_WAIT_ROWS : S_SM_WAIT;
                end
                S_SCAN_RD: begin                            // table read of j in flight
                    prod  <= j[IDX_W-1:0] * row_bytes;
                    state <= S_SCAN_CHK;
                end
                S_SCAN_CHK: begin
                    if (tb_selected) begin
                        j     <= j + 1'b1;
                        state <= last_j ? S_WAIT_ROWS : S_SCAN_RD;
                    end else begin
                        job_valid <= 1'b1;
                        // lint: row offset j * row_bytes is zero-extended to the address width (a 32-bit address build wraps mod 2**ADDR_W)
                        // verilator lint_off WIDTHEXPAND
                        // verilator lint_off WIDTHTRUNC
                        job_addr  <= sim_a + prod;
                        // verilator lint_on WIDTHEXPAND
                        // verilator lint_on WIDTHTRUNC
                        job_tag   <= j[IDX_W-1:0];
                        state     <= S_SCAN_ISSUE;
                    end
                end
                S_SCAN_ISSUE: if (job_ready) begin
                    job_valid <= 1'b0;
                    issued    <= issued + 1'b1;
                    j         <= j + 1'b1;
                    state     <= last_j ? S_WAIT_ROWS : S_SCAN_RD;
                end
                S_WAIT_ROWS: if (received == issued && !row_valid) state <= S_WR_RES;  // fl_results: step_wr
                S_WR_RES: if (res_done) begin               // ids[t], gains[t] written
                    tb_we    <= 1'b1;
                    tb_waddr <= best_idx;
                    tb_wdata <= {1'b1, t[IDX_W-1:0]};
                    prod     <= best_idx * row_bytes;  // stochastic: fl_pool removes j* (remove)
                    state    <= S_SEL_SET;
                end
                S_SEL_SET: begin
                    mode      <= M_UPDATE;
                    job_valid <= 1'b1;
                    // lint: row offset j * row_bytes is zero-extended to the address width (a 32-bit address build wraps mod 2**ADDR_W)
                    // verilator lint_off WIDTHEXPAND
                    // verilator lint_off WIDTHTRUNC
                    job_addr  <= sim_a + prod;
                    // verilator lint_on WIDTHEXPAND
                    // verilator lint_on WIDTHTRUNC
                    job_tag   <= best_idx;
                    received  <= {CNT_W{1'b0}};
                    state     <= S_UPD_ISSUE;
                end
                S_UPD_ISSUE: if (job_ready) begin
                    job_valid <= 1'b0;
                    state     <= S_UPD_WAIT;
                end
                S_UPD_WAIT: if (row_valid) begin          // cover updated for row j*
                    t <= t + 1'b1;
                    j <= {CNT_W{1'b0}};
                    if (t + 1'b1 == k) begin
                        mode  <= M_WEIGHT;
                        state <= S_W_SCAN_RD;
                    end else begin
                        mode  <= M_GAIN;
                        state <= S_ITER;
                    end
                end
                S_W_SCAN_RD: begin
                    prod  <= j[IDX_W-1:0] * row_bytes;
                    state <= S_W_SCAN_CHK;
                end
                S_W_SCAN_CHK: begin
                    if (!tb_selected) begin
                        j     <= j + 1'b1;
                        state <= last_j ? end_state : S_W_SCAN_RD;
                    end else begin
                        job_valid <= 1'b1;
                        // lint: row offset j * row_bytes is zero-extended to the address width (a 32-bit address build wraps mod 2**ADDR_W)
                        // verilator lint_off WIDTHEXPAND
                        // verilator lint_off WIDTHTRUNC
                        job_addr  <= sim_a + prod;
                        // verilator lint_on WIDTHEXPAND
                        // verilator lint_on WIDTHTRUNC
                        job_tag   <= tb_q[IDX_W-1:0];   // carry pos so the result needs no lookup
                        state     <= S_W_ISSUE;
                    end
                end
                S_W_ISSUE: if (job_ready) begin
                    job_valid <= 1'b0;
                    state     <= S_W_WAIT;
                end
                S_W_WAIT: if (row_valid) state <= S_W_WRITE;  // fl_results: weight_wr
                S_W_WRITE: if (res_done) begin
                    j        <= j + 1'b1;
                    state    <= last_j ? end_state : S_W_SCAN_RD;
                end
                S_FINISH: if (wr_idle && !wr_valid) begin
                    status   <= status | {22'd0, wr_err, rd_err, 8'd0};
                    counting <= 1'b0;
                    state    <= stats_ok ? S_STATS : S_DONE;
                end
                S_STATS: state <= S_DRAIN;                  // fl_results: stats_wr (status is final now)
                S_DRAIN: if (!wr_valid && wr_idle) state <= S_DONE;
                S_DONE: state <= S_IDLE;
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
