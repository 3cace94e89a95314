// fl_draws: the stochastic mode's draw remainders, computed ahead of the pool swaps.
//
// host/golden/stochastic.py draws, for greedy step t = 0..k-1 with pool size m = n - t and
// cnt = min(sample_size, m), r = 0..cnt-1: x = xorshift32(state), p = r + x % (m - r). The
// sequence of (x, m - r) pairs depends only on (seed, n, k, sample_size), never on the data or
// the picks, so this module walks it on its own from `start` and keeps the remainders x % (m - r)
// coming in order; the engine adds r and swaps. One fl_urem (BPC bits per cycle, latency
// 32/BPC + 1) would make every draw cost >= 32/BPC + 1 cycles; UNITS of them, used round robin,
// overlap UNITS remainders, so the engine can take one every ceil((32/BPC + 1) / UNITS) cycles
// while each unit keeps its short compare-subtract chain (the 200 MHz path is unchanged).
//
//   start --> {state, m, r, cnt, steps} --x, m - r--> unit[ip] (ip: round robin) ... unit[UNITS-1]
//                                                         |  each unit holds its remainder
//   out_valid / out_rem <-- unit[cp] (cp: round robin, same order) <--+  until taken
//
// The units are the queue: unit i holds draw g (g mod UNITS = i) from its issue until `take`.
// A unit is issued the next draw in the cycle its remainder is taken (or any later cycle),
// one draw per cycle at most, so draw g issues in cycle I(g) = max(I(g-1) + 1, T(g - UNITS))
// (T = take cycle; I(0) = the cycle after `start`) and is out_valid from I(g) + 32/BPC + 1 on.
// host/device/rtl/schedule.py and the C++ model replay exactly this.
`default_nettype none
module fl_draws #(
    parameter integer N_MAX = 4096,  // largest class: n, k and every divisor m - r are <= N_MAX; power of two, 2..2**20
    parameter integer BPC   = 2,     // remainder bits per cycle of each fl_urem unit; 1, 2, 4, 8
    parameter integer UNITS = 4      // fl_urem units used round robin (= draws in flight); 1..32
) (
    input  wire                       clk,
    input  wire                       rst,        // synchronous, active high
    input  wire                       start,      // begin the sequence of (seed, n, k, ssize); drops any older one
    input  wire [31:0]                seed,       // host seed (any value; mixed as host/golden/stochastic.py seed_state)
    input  wire [$clog2(N_MAX):0]     n,          // class size, 1..N_MAX
    input  wire [$clog2(N_MAX):0]     k,          // greedy steps, 1..n (0: no draws)
    input  wire [31:0]                ssize,      // candidates per step, >= 1 (capped at m)
    output wire                       out_valid,  // the next remainder of the sequence is ready
    output wire [$clog2(N_MAX):0]     out_rem,    // x % (m - r) of that draw
    input  wire                       take,       // consume it (ignored without out_valid)
    output wire                       idle        // every draw of the sequence issued and taken
);
    localparam integer CNT_W = $clog2(N_MAX) + 1;
    localparam integer UW    = (UNITS > 1) ? $clog2(UNITS) : 1;

    generate
        if (N_MAX < 2 || N_MAX > (1 << 20) || (N_MAX & (N_MAX - 1)) != 0) begin : g_bad_nmax
            initial $fatal(1, "fl_draws: N_MAX=%0d must be a power of two in 2..2**20", N_MAX);
        end
        if (!(BPC == 1 || BPC == 2 || BPC == 4 || BPC == 8)) begin : g_bad_bpc
            initial $fatal(1, "fl_draws: BPC=%0d must be 1, 2, 4 or 8", BPC);
        end
        if (UNITS < 1 || UNITS > 32) begin : g_bad_units
            initial $fatal(1, "fl_draws: UNITS=%0d must be in 1..32", UNITS);
        end
    endgenerate

    // sequence walker: the draw to issue next
    reg              active;                    // draws left to issue
    reg [31:0]       rng;                       // xorshift32 state
    reg [CNT_W-1:0]  mg, rg, cg, steps;         // pool size, draw, draws of this step, steps left
    wire [31:0] xs1 = rng ^ (rng << 13);
    wire [31:0] xs2 = xs1 ^ (xs1 >> 17);
    wire [31:0] rng_next = xs2 ^ (xs2 << 5);
    wire [31:0] seed_mix = seed * 32'h9E3779B1 + 32'h6D2B79F5;
    wire [CNT_W-1:0] m_next = mg - 1'b1;
    wire        step_end = (rg + 1'b1 == cg);

    // the units
    reg  [UW-1:0]    ip, cp;                    // next unit to issue / to take from
    reg  [UNITS-1:0] full;                      // unit holds an issued, untaken draw
    wire [UNITS-1:0] busy;
    wire [CNT_W-1:0] rem [0:UNITS-1];
    wire fire_take = take && out_valid;
    wire issue = active && !busy[ip] && (!full[ip] || (fire_take && cp == ip));

    genvar u;
    generate
        for (u = 0; u < UNITS; u = u + 1) begin : g_unit
            wire done_unused;
            fl_urem #(.NUM_W(32), .DEN_W(CNT_W), .BPC(BPC)) u_urem (
                .clk(clk), .rst(rst), .start(issue && ip == u), .num(rng_next), .den(mg - rg),
                .busy(busy[u]), .done(done_unused), .rem(rem[u])
            );
        end
    endgenerate

    assign out_valid = full[cp] && !busy[cp];
    assign out_rem   = rem[cp];
    assign idle      = !active && (full == {UNITS{1'b0}});

    function [UW-1:0] next_unit(input [UW-1:0] i);
        // lint: compared with the 32-bit integer UNITS - 1; unsigned, zero extension intended
        // verilator lint_off WIDTHEXPAND
        next_unit = (i == UNITS - 1) ? {UW{1'b0}} : i + 1'b1;
        // verilator lint_on WIDTHEXPAND
    endfunction

    always @(posedge clk) begin
        if (rst) begin
            active <= 1'b0;
            full   <= {UNITS{1'b0}};
            ip     <= {UW{1'b0}};
            cp     <= {UW{1'b0}};
        end else if (start) begin
            active <= (k != 0) && (ssize != 0);  // ssize 0 would never end a step: no draws
            rng    <= (seed_mix == 0) ? 32'd1 : seed_mix;
            mg     <= n;
            rg     <= {CNT_W{1'b0}};
            cg     <= (ssize < {{(32-CNT_W){1'b0}}, n}) ? ssize[CNT_W-1:0] : n;
            steps  <= k;
            full   <= {UNITS{1'b0}};
            ip     <= {UW{1'b0}};
            cp     <= {UW{1'b0}};
        end else begin
            if (fire_take) begin
                full[cp] <= 1'b0;
                cp       <= next_unit(cp);
            end
            if (issue) begin                        // after the take: a unit re-issued as it is taken stays full
                full[ip] <= 1'b1;
                ip       <= next_unit(ip);
                rng      <= rng_next;
                if (step_end) begin
                    rg     <= {CNT_W{1'b0}};
                    mg     <= m_next;
                    cg     <= (ssize < {{(32-CNT_W){1'b0}}, m_next}) ? ssize[CNT_W-1:0] : m_next;
                    steps  <= steps - 1'b1;
                    active <= (steps != 1);
                end else begin
                    rg <= rg + 1'b1;
                end
            end
        end
    end
endmodule
`default_nettype wire
