// fl_pool: the stochastic mode's candidate pool (host/golden/stochastic.py's partial Fisher-Yates).
//
//   start --> fl_draws (seed, n, k, ssize), m = n      clr_en: pool[clr_idx] = clr_idx (CLEAR)
//   step  --> cnt = min(ssize, m), r = 0; for each draw r < cnt:
//     WAIT  take x % (m - r) from fl_draws (computed ahead) --> p = r + it   (samples pool[r])
//     RD_P  pool[p] read in flight                 SWAP  cand = pool[p]: cand_valid (one cycle)
//     WR2   pool[r] = pool[p], pool[p] = old pool[r] (two writes)             HOLD  until `next`
//   next  --> r += 1 (WAIT again, or idle after the step's last draw: `last` = r + 1 == cnt)
//   remove --> pool[remove_pos] = pool[m - 1], m -= 1 (the step's pick; any time after the step)
// The swap stage takes 5 cycles per draw when `next` comes the cycle after WR2 (fl_engine's row
// job handshake) and the remainder is ready: the draws' floor that schedule.py models. Pool reads:
// the read address is r from WR2 / step on, so the edge that takes the remainder samples pool[r]
// after every earlier write has landed (the remainder may be ready in the first WAIT cycle), and
// m - 1 from the step's last `next` on, for `remove`. clr_en, the swap and remove never overlap.
// Contract (fl_engine keeps it): `next` is seen from the 2nd cycle after cand_valid on; `remove`
// comes >= 2 cycles after the step's last `next` and before the next `step`.
`default_nettype none
module fl_pool #(
    parameter integer N_MAX = 4096,  // largest class (pool depth); power of two, 2..2**20
    parameter integer BPC   = 2,     // fl_draws: remainder bits per cycle of each fl_urem; 1, 2, 4, 8
    parameter integer UNITS = 4      // fl_draws: fl_urem units (remainders in flight); 1..32
) (
    input  wire                     clk,
    input  wire                     rst,         // synchronous, active high
    input  wire                     start,       // a class / part begins: its draws start, m = n
    input  wire [31:0]              seed,        // host seed (any value)
    input  wire [$clog2(N_MAX):0]   n,           // class size, 1..N_MAX
    input  wire [$clog2(N_MAX):0]   k,           // greedy steps, 1..n
    input  wire [31:0]              ssize,       // candidates per step, >= 1 (capped at m)
    input  wire                     clr_en,      // pool[clr_idx] = clr_idx
    input  wire [$clog2(N_MAX)-1:0] clr_idx,
    input  wire                     step,        // a greedy step begins: draw its cnt candidates
    output wire                     cand_valid,  // one cycle per draw: cand is the step's candidate r
    output wire [$clog2(N_MAX)-1:0] cand,
    output wire                     last,        // the current draw is the step's last
    input  wire                     next,        // the current candidate is used: go on (after cand_valid)
    input  wire                     remove,      // drop the pick at pool position remove_pos
    input  wire [$clog2(N_MAX)-1:0] remove_pos,
    output wire                     idle         // no draw in progress or left over (queues empty)
);
    localparam integer IDX_W = $clog2(N_MAX);
    localparam integer CNT_W = IDX_W + 1;

    generate
        if (N_MAX < 2 || N_MAX > (1 << 20) || (N_MAX & (N_MAX - 1)) != 0) begin : g_bad_nmax
            initial $fatal(1, "fl_pool: N_MAX=%0d must be a power of two in 2..2**20", N_MAX);
        end
        if (!(BPC == 1 || BPC == 2 || BPC == 4 || BPC == 8)) begin : g_bad_bpc
            initial $fatal(1, "fl_pool: BPC=%0d must be 1, 2, 4 or 8", BPC);
        end
        if (UNITS < 1 || UNITS > 32) begin : g_bad_units
            initial $fatal(1, "fl_pool: UNITS=%0d must be in 1..32", UNITS);
        end
    endgenerate

    localparam [2:0] P_IDLE = 0, P_WAIT = 1, P_RD_P = 2, P_SWAP = 3, P_WR2 = 4, P_HOLD = 5;
    reg [2:0]        ps;
    reg [CNT_W-1:0]  m, cnt, r;                 // pool size, draws of this step, draw
    reg [IDX_W-1:0]  p_pos, vr;                 // swap partner, pool[r] before the swap
    reg              we;
    reg [IDX_W-1:0]  waddr, wdata, raddr;
    wire [IDX_W-1:0] q;
    fl_sdp_ram #(.DEPTH(N_MAX), .WIDTH(IDX_W)) u_ram (
        .clk(clk), .wr_en(we), .wr_addr(waddr), .wr_data(wdata), .rd_addr(raddr), .rd_data(q)
    );

    wire             rem_ready, draws_idle;
    // lint: a remainder is < n <= N_MAX, so the top bit of the count width is always 0
    // verilator lint_off UNUSEDSIGNAL
    wire [CNT_W-1:0] rem;
    // verilator lint_on UNUSEDSIGNAL
    fl_draws #(.N_MAX(N_MAX), .BPC(BPC), .UNITS(UNITS)) u_draws (
        .clk(clk), .rst(rst), .start(start), .seed(seed), .n(n), .k(k), .ssize(ssize),
        .out_valid(rem_ready), .out_rem(rem), .take(ps == P_WAIT), .idle(draws_idle)
    );

    assign cand_valid = (ps == P_SWAP);
    assign cand       = q;                      // pool[p] in SWAP
    assign last       = (r + 1'b1 == cnt);
    assign idle       = (ps == P_IDLE) && draws_idle;

    always @(posedge clk) begin
        we <= 1'b0;
        if (rst) begin
            ps <= P_IDLE;
        end else begin
            if (start) m <= n;
            if (clr_en) begin
                we    <= 1'b1;
                waddr <= clr_idx;
                wdata <= clr_idx;
            end
            if (remove) begin                   // q = pool[m-1]
                we    <= 1'b1;
                waddr <= remove_pos;
                wdata <= q;
                m     <= m - 1'b1;
            end
            if (start) ps <= P_IDLE;
            else if (step) begin
                r     <= {CNT_W{1'b0}};
                cnt   <= (ssize < {{(32-CNT_W){1'b0}}, m}) ? ssize[CNT_W-1:0] : m;
                raddr <= {IDX_W{1'b0}};         // pool[0] for the first swap
                ps    <= P_WAIT;
            end else case (ps)
                P_WAIT: if (rem_ready) begin
                    p_pos <= r[IDX_W-1:0] + rem[IDX_W-1:0];
                    raddr <= r[IDX_W-1:0] + rem[IDX_W-1:0];
                    ps    <= P_RD_P;
                end
                P_RD_P: begin                   // q = pool[r]; pool[p] read in flight
                    vr <= q;
                    ps <= P_SWAP;
                end
                P_SWAP: begin                   // q = pool[p]: the candidate
                    we    <= 1'b1;
                    waddr <= r[IDX_W-1:0];
                    wdata <= q;
                    ps    <= P_WR2;
                end
                P_WR2: begin                    // second half of the swap
                    we    <= 1'b1;
                    waddr <= p_pos;
                    wdata <= vr;
                    raddr <= r[IDX_W-1:0] + 1'b1;   // pool[r+1], sampled when its remainder is taken
                    ps    <= P_HOLD;
                end
                P_HOLD: if (next) begin
                    r <= r + 1'b1;
                    if (last) begin
                        raddr <= m[IDX_W-1:0] - 1'b1;   // pool[m-1], for remove
                        ps    <= P_IDLE;
                    end else begin
                        ps    <= P_WAIT;
                    end
                end
                default: ;
            endcase
        end
    end
endmodule
`default_nettype wire
