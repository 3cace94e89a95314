// fl_urem: sequential unsigned remainder num % den (restoring division, BPC quotient bits per cycle).
//
// Used by the stochastic mode's partial Fisher-Yates draw, p = r + x % (m - r): x is a 32-bit
// xorshift output, m - r <= N_MAX. Fixed latency (the engine's cycle model relies on it):
//   start sampled at edge E0 -> NUM_W/BPC iteration edges -> done high for the one cycle after
//   the last of them, with rem valid from then until the next start.
//   num --> [acc = {acc, next BPC bits of num}; BPC x (acc >= den ? acc - den : acc)] --> rem
// den must be >= 1 (the engine never passes 0); den = 0 leaves rem = num's low DEN_W bits.
`default_nettype none
module fl_urem #(
    parameter integer NUM_W = 32,  // dividend bits; 1..64, a multiple of BPC
    parameter integer DEN_W = 14,  // divisor / remainder bits; 1..32
    parameter integer BPC   = 2    // dividend bits consumed per cycle (chained compare-subtracts); 1, 2, 4, 8
) (
    input  wire             clk,
    input  wire             rst,    // synchronous, active high
    input  wire             start,  // ignored while busy
    input  wire [NUM_W-1:0] num,
    input  wire [DEN_W-1:0] den,
    output wire             busy,
    output reg              done,   // one-cycle pulse
    output wire [DEN_W-1:0] rem
);
    localparam integer ITERS = NUM_W / BPC;
    localparam integer CW    = $clog2(ITERS + 1);

    generate
        if (NUM_W < 1 || NUM_W > 64) begin : g_bad_num
            initial $fatal(1, "fl_urem: NUM_W=%0d must be in 1..64", NUM_W);
        end
        if (DEN_W < 1 || DEN_W > 32) begin : g_bad_den
            initial $fatal(1, "fl_urem: DEN_W=%0d must be in 1..32", DEN_W);
        end
        if (!(BPC == 1 || BPC == 2 || BPC == 4 || BPC == 8) || (NUM_W % BPC) != 0) begin : g_bad_bpc
            initial $fatal(1, "fl_urem: BPC=%0d must be 1, 2, 4 or 8 and divide NUM_W=%0d", BPC, NUM_W);
        end
    endgenerate

    reg [NUM_W-1:0] q;        // dividend bits not yet consumed, MSB first
    reg [DEN_W-1:0] d;
    reg [DEN_W:0]   acc;      // partial remainder (< d after every step)
    reg [CW-1:0]    cnt;
    assign busy = (cnt != 0);
    assign rem  = acc[DEN_W-1:0];

    // BPC restoring steps in one cycle
    reg [DEN_W:0] a;
    integer b;
    always @(*) begin
        a = acc;
        for (b = 0; b < BPC; b = b + 1) begin
            a = {a[DEN_W-1:0], q[NUM_W-1-b]};
            if (a >= {1'b0, d}) a = a - {1'b0, d};
        end
    end

    always @(posedge clk) begin
        done <= 1'b0;
        if (rst) begin
            cnt <= {CW{1'b0}};
            acc <= {(DEN_W+1){1'b0}};
        end else if (cnt != 0) begin
            acc <= a;
            q   <= q << BPC;
            cnt <= cnt - 1'b1;
            done <= (cnt == 1);
        end else if (start) begin
            q   <= num;
            d   <= den;
            acc <= {(DEN_W+1){1'b0}};
            cnt <= ITERS[CW-1:0];
        end
    end
endmodule
`default_nettype wire
