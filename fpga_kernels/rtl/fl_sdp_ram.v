// fl_sdp_ram: simple dual-port RAM (one write port, one read port, synchronous read).
//
// Written so Vivado infers block RAM: registered read data, one cycle of latency. A read of
// the address being written in the same cycle returns the OLD word (read-first); the engine
// never relies on that case. Used for the cover vector (LANES words side by side, one beat of
// a row per address) and for the per-candidate {selected, position} table.
`default_nettype none
module fl_sdp_ram #(
    parameter integer DEPTH = 64,  // words; power of two, 2..2**20
    parameter integer WIDTH = 17   // bits per word; 1..4096
) (
    input  wire                     clk,
    input  wire                     wr_en,
    input  wire [$clog2(DEPTH)-1:0] wr_addr,
    input  wire [WIDTH-1:0]         wr_data,
    input  wire [$clog2(DEPTH)-1:0] rd_addr,
    output reg  [WIDTH-1:0]         rd_data  // mem[rd_addr] as of the previous clock edge
);
    generate
        if (DEPTH < 2 || DEPTH > (1 << 20) || (DEPTH & (DEPTH - 1)) != 0) begin : g_bad_depth
            initial $fatal(1, "fl_sdp_ram: DEPTH=%0d must be a power of two in 2..2**20", DEPTH);
        end
        if (WIDTH < 1 || WIDTH > 4096) begin : g_bad_width
            initial $fatal(1, "fl_sdp_ram: WIDTH=%0d must be in 1..4096", WIDTH);
        end
    endgenerate

    reg [WIDTH-1:0] mem [0:DEPTH-1];

    always @(posedge clk) begin
        if (wr_en) mem[wr_addr] <= wr_data;
        rd_data <= mem[rd_addr];
    end
endmodule
`default_nettype wire
