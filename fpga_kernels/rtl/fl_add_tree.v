// fl_add_tree: pipelined binary adder tree, N unsigned inputs -> one sum, with sideband.
//
//   in[0] in[1] in[2] in[3] ...          level 0 (inputs, combinational)
//     \   /     \   /
//     reg+      reg+       ...            level 1: N/2 sums of W+1 bits, registered
//        \      /
//          reg+                           level L = log2(N): 1 sum of W+L bits
// Latency is exactly L cycles; one input vector per cycle (fully pipelined, never stalls).
// valid / last / tag travel with the data so a consumer can tell rows apart.
`default_nettype none
module fl_add_tree #(
    parameter integer N     = 8,   // number of inputs (lanes); power of two, 2..64
    parameter integer W     = 16,  // bits per input; 1..32
    parameter integer TAG_W = 8    // bits of the sideband tag carried with each vector; >= 1
) (
    input  wire                     clk,
    input  wire                     rst,       // synchronous, active high: clears valid bits
    input  wire                     in_valid,
    input  wire                     in_last,
    input  wire [TAG_W-1:0]         in_tag,
    input  wire [N*W-1:0]           in_data,   // lane p at bits [p*W +: W]
    output wire                     out_valid,
    output wire                     out_last,
    output wire [TAG_W-1:0]         out_tag,
    output wire [W+$clog2(N)-1:0]   out_sum
);
    localparam integer L = $clog2(N);

    generate
        if (N < 2 || N > 64 || (N & (N - 1)) != 0) begin : g_bad_n
            initial $fatal(1, "fl_add_tree: N=%0d must be a power of two in 2..64", N);
        end
        if (W < 1 || W > 32) begin : g_bad_w
            initial $fatal(1, "fl_add_tree: W=%0d must be in 1..32", W);
        end
        if (TAG_W < 1) begin : g_bad_tag
            initial $fatal(1, "fl_add_tree: TAG_W=%0d must be >= 1", TAG_W);
        end
    endgenerate

    genvar l;
    generate
        for (l = 0; l <= L; l = l + 1) begin : lvl
            localparam integer CNT = N >> l;  // sums at this level
            localparam integer WW  = W + l;   // bits per sum at this level
            reg [CNT*WW-1:0] v;
            reg              vld;
            reg              lst;
            reg [TAG_W-1:0]  tg;
            if (l == 0) begin : g_in
                always @* begin
                    v   = in_data;
                    vld = in_valid;
                    lst = in_last;
                    tg  = in_tag;
                end
            end else begin : g_add
                integer q;
                always @(posedge clk) begin
                    for (q = 0; q < CNT; q = q + 1)
                        v[q*WW +: WW] <= {1'b0, lvl[l-1].v[(2*q)*(WW-1) +: WW-1]}
                                       + {1'b0, lvl[l-1].v[(2*q+1)*(WW-1) +: WW-1]};
                    lst <= lvl[l-1].lst;
                    tg  <= lvl[l-1].tg;
                    vld <= rst ? 1'b0 : lvl[l-1].vld;
                end
            end
        end
    endgenerate

    assign out_valid = lvl[L].vld;
    assign out_last  = lvl[L].lst;
    assign out_tag   = lvl[L].tg;
    assign out_sum   = lvl[L].v;
endmodule
`default_nettype wire
