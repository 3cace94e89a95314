// fl_results: the engine's result writer -- output pointers and the 32-bit words of each result.
//
//   load    --> ids_a, gains_a, weights_a, stats_a = the out pointers; stats_ok = stats_ptr 4-aligned
//   advance --> ids_a += 4 k, gains_a += 8 k, weights_a += 4 k  (the next part's results follow)
//   step_wr   --> ids[t] = idx, gains[t] = gain (lo, hi)              3 words
//   weight_wr --> weights[pos] = count                                1 word
//   stats_wr  --> stats[0] = status (uint64), stats[1] = cycles      4 words
//   --> wr_valid / wr_addr / wr_data (to fl_axi_wr): a command's first word is presented the
//       cycle after the command, each next one the cycle after the previous is accepted;
//       done = its last word accepted (wr_valid drops the cycle after).
// One command at a time (none while wr_valid). t, gain, status and cycles are read as each word
// is loaded, so they must hold until done; idx, pos and count are taken with the command.
`default_nettype none
module fl_results #(
    parameter integer N_MAX  = 4096, // largest class: t, pos < N_MAX; power of two, 2..2**20
    parameter integer ADDR_W = 64    // AXI address bits; 32..64
) (
    input  wire                     clk,
    input  wire                     rst,         // synchronous, active high
    input  wire                     load,        // a run starts: take the pointers
    // lint: a build with ADDR_W < 64 ignores the pointers' high bits
    // verilator lint_off UNUSEDSIGNAL
    input  wire [63:0]              ids_ptr,     // uint32 [k]
    input  wire [63:0]              gains_ptr,   // uint64 [k]
    input  wire [63:0]              weights_ptr, // uint32 [k]
    input  wire [63:0]              stats_ptr,   // uint64 [2] = {status, cycles}
    // verilator lint_on UNUSEDSIGNAL
    output reg                      stats_ok,    // stats_ptr is 4-byte aligned (stats may be written)
    input  wire                     advance,     // the next part: results move on by adv_k elements
    input  wire [$clog2(N_MAX):0]   adv_k,
    input  wire                     step_wr,     // write greedy step t's id and gain
    input  wire [$clog2(N_MAX):0]   t,
    input  wire [$clog2(N_MAX)-1:0] idx,
    input  wire [63:0]              gain,
    input  wire                     weight_wr,   // write the weight of the pick at position pos
    input  wire [$clog2(N_MAX)-1:0] pos,
    input  wire [31:0]              count,
    input  wire                     stats_wr,    // write {status, cycles}
    input  wire [31:0]              status,
    input  wire [63:0]              cycles,
    output wire                     done,        // the command's last word is accepted this cycle
    output reg                      wr_valid,    // to fl_axi_wr
    input  wire                     wr_ready,
    output reg  [ADDR_W-1:0]        wr_addr,
    output reg  [31:0]              wr_data
);
    generate
        if (N_MAX < 2 || N_MAX > (1 << 20) || (N_MAX & (N_MAX - 1)) != 0) begin : g_bad_nmax
            initial $fatal(1, "fl_results: N_MAX=%0d must be a power of two in 2..2**20", N_MAX);
        end
        if (ADDR_W < 32 || ADDR_W > 64) begin : g_bad_addr
            initial $fatal(1, "fl_results: ADDR_W=%0d must be in 32..64", ADDR_W);
        end
    endgenerate

    // the word on the bus: W_ID ids[t], W_GLO / W_GHI gains[t], W_S0..W_S3 stats, W_LAST any last one
    localparam [2:0] W_IDLE = 0, W_ID = 1, W_GLO = 2, W_S0 = 3, W_S1 = 4, W_S2 = 5, W_LAST = 6;
    reg [2:0]        ws;
    reg [ADDR_W-1:0] ids_a, gains_a, weights_a, stats_a;

    assign done = (ws == W_LAST) && wr_ready;

    always @(posedge clk) begin
        if (rst) begin
            ws       <= W_IDLE;
            wr_valid <= 1'b0;
        end else begin
            if (load) begin
                ids_a     <= ids_ptr[ADDR_W-1:0];
                gains_a   <= gains_ptr[ADDR_W-1:0];
                weights_a <= weights_ptr[ADDR_W-1:0];
                stats_a   <= stats_ptr[ADDR_W-1:0];
                stats_ok  <= (stats_ptr[1:0] == 2'b00);
            end
            if (advance) begin
                // lint: result offsets (k words) are zero-extended to the address width
                // verilator lint_off WIDTHEXPAND
                ids_a     <= ids_a + {adv_k, 2'b00};
                gains_a   <= gains_a + {adv_k, 3'b000};
                weights_a <= weights_a + {adv_k, 2'b00};
                // verilator lint_on WIDTHEXPAND
            end
            case (ws)
                W_IDLE: begin
                    if (step_wr) begin
                        // lint: result offsets (k words) are zero-extended to the address width
                        // verilator lint_off WIDTHEXPAND
                        wr_addr <= ids_a + {t, 2'b00};
                        // verilator lint_on WIDTHEXPAND
                        wr_data <= {{(32-$clog2(N_MAX)){1'b0}}, idx};
                        ws      <= W_ID;
                    end else if (weight_wr) begin
                        // lint: result offsets (k words) are zero-extended to the address width
                        // verilator lint_off WIDTHEXPAND
                        wr_addr <= weights_a + {pos, 2'b00};
                        // verilator lint_on WIDTHEXPAND
                        wr_data <= count;
                        ws      <= W_LAST;
                    end else if (stats_wr) begin
                        wr_addr <= stats_a;
                        wr_data <= status;
                        ws      <= W_S0;
                    end
                    if (step_wr || weight_wr || stats_wr) wr_valid <= 1'b1;
                end
                W_ID: if (wr_ready) begin
                    // lint: result offsets (k words) are zero-extended to the address width
                    // verilator lint_off WIDTHEXPAND
                    wr_addr <= gains_a + {t, 3'b000};
                    // verilator lint_on WIDTHEXPAND
                    wr_data <= gain[31:0];
                    ws      <= W_GLO;
                end
                W_GLO: if (wr_ready) begin
                    // lint: result offsets (k words) are zero-extended to the address width
                    // verilator lint_off WIDTHEXPAND
                    wr_addr <= gains_a + {t, 3'b100};
                    // verilator lint_on WIDTHEXPAND
                    wr_data <= gain[63:32];
                    ws      <= W_LAST;
                end
                W_S0: if (wr_ready) begin
                    wr_addr <= stats_a + 4;
                    wr_data <= 32'd0;
                    ws      <= W_S1;
                end
                W_S1: if (wr_ready) begin
                    wr_addr <= stats_a + 8;
                    wr_data <= cycles[31:0];
                    ws      <= W_S2;
                end
                W_S2: if (wr_ready) begin
                    wr_addr <= stats_a + 12;
                    wr_data <= cycles[63:32];
                    ws      <= W_LAST;
                end
                W_LAST: if (wr_ready) begin
                    wr_valid <= 1'b0;
                    ws       <= W_IDLE;
                end
                default: ws <= W_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
