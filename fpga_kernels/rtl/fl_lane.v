// fl_lane: one lane of the facility-location datapath (one similarity element per cycle).
//
// Purely combinational; the datapath registers around it. One lane serves element
// i = beat * LANES + p of the row being streamed, against cover[i] held on chip.
//   greedy pass : val = en ? max(0, s - c) : 0            (term of the marginal gain)
//   update pass : cover_new = en ? max(c, s) : c          (cover after selecting this row)
//   weight pass : hit = en & !claimed & (s == c)          (first selected row, in ascending
//                 claimed_new = claimed | hit               order, that attains cover[i] owns i)
//                 val = hit
`default_nettype none
module fl_lane #(
    parameter integer SIM_W = 16  // bits of one similarity / cover value (unsigned); 1..32
) (
    input  wire [SIM_W-1:0] s,           // similarity element sim[j, i]
    input  wire [SIM_W-1:0] c,           // cover[i]
    input  wire             claimed,     // element i already owned by a lower selected j (weight pass)
    input  wire             en,          // lane holds a real element (i < n)
    input  wire             weight_mode, // 1: val = hit (weight pass); 0: val = max(0, s - c)
    output wire [SIM_W-1:0] val,         // value this lane adds to the row's reduction
    output wire [SIM_W-1:0] cover_new,   // max(c, s) when en, else c
    output wire             claimed_new  // claimed | hit
);
    generate
        if (SIM_W < 1 || SIM_W > 32) begin : g_bad_sim_w
            initial $fatal(1, "fl_lane: SIM_W=%0d must be in 1..32", SIM_W);
        end
    endgenerate

    wire gt  = s > c;
    wire hit = en & ~claimed & (s == c);
    wire [SIM_W-1:0] diff = (en & gt) ? (s - c) : {SIM_W{1'b0}};

    assign val         = weight_mode ? {{(SIM_W-1){1'b0}}, hit} : diff;
    assign cover_new   = (en & gt) ? s : c;
    assign claimed_new = claimed | hit;
endmodule
`default_nettype wire
