// fl_argmax: running argmax over a stream of (value, index, aux) pairs, ties to the lowest index.
//
// A pair replaces the best when its value is larger, or equal with a lower index: the golden
// rule in both modes (exact mode streams candidates in ascending index order, where this is
// "first maximum"; stochastic mode streams them in pool order). The first pair after clear is
// always taken, so an all-zero round still picks its lowest candidate. aux rides along with
// the best (the engine passes the candidate's pool position there).
`default_nettype none
module fl_argmax #(
    parameter integer VAL_W = 36,  // bits of a value (gain); 1..64
    parameter integer IDX_W = 10,  // bits of an index (candidate id); 1..32
    parameter integer AUX_W = 1    // bits of the sideband carried with the best; 1..32
) (
    input  wire             clk,
    input  wire             rst,        // synchronous, active high
    input  wire             clear,      // start a new round (forget the best)
    input  wire             in_valid,
    input  wire [VAL_W-1:0] in_val,
    input  wire [IDX_W-1:0] in_idx,
    input  wire [AUX_W-1:0] in_aux,
    output reg              best_valid, // at least one pair seen since clear
    output reg  [VAL_W-1:0] best_val,
    output reg  [IDX_W-1:0] best_idx,
    output reg  [AUX_W-1:0] best_aux
);
    generate
        if (VAL_W < 1 || VAL_W > 64) begin : g_bad_val
            initial $fatal(1, "fl_argmax: VAL_W=%0d must be in 1..64", VAL_W);
        end
        if (IDX_W < 1 || IDX_W > 32) begin : g_bad_idx
            initial $fatal(1, "fl_argmax: IDX_W=%0d must be in 1..32", IDX_W);
        end
        if (AUX_W < 1 || AUX_W > 32) begin : g_bad_aux
            initial $fatal(1, "fl_argmax: AUX_W=%0d must be in 1..32", AUX_W);
        end
    endgenerate

    always @(posedge clk) begin
        if (rst || clear) begin
            best_valid <= 1'b0;
            best_val   <= {VAL_W{1'b0}};
            best_idx   <= {IDX_W{1'b0}};
            best_aux   <= {AUX_W{1'b0}};
        end else if (in_valid && (!best_valid || in_val > best_val
                                  || (in_val == best_val && in_idx < best_idx))) begin
            best_valid <= 1'b1;
            best_val   <= in_val;
            best_idx   <= in_idx;
            best_aux   <= in_aux;
        end
    end
endmodule
`default_nettype wire
