// fl_row_acc: accumulates the per-beat sums of one row into that row's total.
//
// A row arrives as consecutive beats (in_valid); the beat with in_last closes it. One cycle
// later out_valid pulses with out_sum = sum of the row's beats and the tag of its last beat.
// Never stalls; beats of the next row may follow the last beat back to back.
`default_nettype none
module fl_row_acc #(
    parameter integer IN_W  = 21,  // bits of one beat sum (fl_add_tree output); 1..64
    parameter integer OUT_W = 36,  // bits of the row total; IN_W..64 (caller sizes it so a row never overflows)
    parameter integer TAG_W = 8    // bits of the tag carried through; >= 1
) (
    input  wire              clk,
    input  wire              rst,        // synchronous, active high
    input  wire              in_valid,
    input  wire              in_last,
    input  wire [TAG_W-1:0]  in_tag,
    input  wire [IN_W-1:0]   in_sum,
    output reg               out_valid,
    output reg  [TAG_W-1:0]  out_tag,
    output reg  [OUT_W-1:0]  out_sum
);
    generate
        if (IN_W < 1 || IN_W > 64) begin : g_bad_in
            initial $fatal(1, "fl_row_acc: IN_W=%0d must be in 1..64", IN_W);
        end
        if (OUT_W < IN_W || OUT_W > 64) begin : g_bad_out
            initial $fatal(1, "fl_row_acc: OUT_W=%0d must be in IN_W(%0d)..64", OUT_W, IN_W);
        end
        if (TAG_W < 1) begin : g_bad_tag
            initial $fatal(1, "fl_row_acc: TAG_W=%0d must be >= 1", TAG_W);
        end
    endgenerate

    reg  [OUT_W-1:0] acc;  // running sum of the current row's earlier beats
    wire [OUT_W-1:0] nxt = acc + {{(OUT_W-IN_W){1'b0}}, in_sum};

    always @(posedge clk) begin
        out_valid <= 1'b0;
        if (rst) begin
            acc <= {OUT_W{1'b0}};
        end else if (in_valid) begin
            if (in_last) begin
                out_valid <= 1'b1;
                out_sum   <= nxt;
                out_tag   <= in_tag;
                acc       <= {OUT_W{1'b0}};
            end else begin
                acc <= nxt;
            end
        end
    end
endmodule
`default_nettype wire
