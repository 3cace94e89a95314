// fl_axi_wr: AXI4 write master for single 32-bit words (ids, gains, weights).
//
//   req (byte addr, word) --> AW (addr aligned down to the bus, AWLEN=0, full AWSIZE)
//                         --> W  (word replicated across the bus, WSTRB selects its 4 bytes)
//                         <-- B  (then ready for the next word)
// AW and W are offered in the same cycle and may complete in either order; one write is in
// flight at a time. Results are a few words per greedy step, so this costs nothing next to
// the row reads. err is sticky until rst (a BRESP other than OKAY).
`default_nettype none
module fl_axi_wr #(
    parameter integer ADDR_W = 64,  // AXI address bits; 32..64
    parameter integer DATA_W = 512  // AXI data bits; power of two, 32..1024
) (
    input  wire                clk,
    input  wire                rst,         // synchronous, active high
    input  wire                req_valid,
    output wire                req_ready,   // high while idle
    input  wire [ADDR_W-1:0]   req_addr,    // byte address, 4-byte aligned
    input  wire [31:0]         req_data,
    output wire                idle,        // no write in flight (all B responses seen)
    output reg                 err,
    output wire                m_axi_awvalid,
    input  wire                m_axi_awready,
    output wire [ADDR_W-1:0]   m_axi_awaddr,
    output wire [7:0]          m_axi_awlen,
    output wire [2:0]          m_axi_awsize,
    output wire [1:0]          m_axi_awburst,
    output wire [0:0]          m_axi_awid,
    output wire [3:0]          m_axi_awcache,
    output wire [2:0]          m_axi_awprot,
    output wire                m_axi_wvalid,
    input  wire                m_axi_wready,
    output wire [DATA_W-1:0]   m_axi_wdata,
    output wire [DATA_W/8-1:0] m_axi_wstrb,
    output wire                m_axi_wlast,
    input  wire                m_axi_bvalid,
    output wire                m_axi_bready,
    input  wire [1:0]          m_axi_bresp,
    // lint: single-ID master: BID is always 0, the port exists because AXI4 has it
    // verilator lint_off UNUSEDSIGNAL
    input  wire [0:0]          m_axi_bid
    // verilator lint_on UNUSEDSIGNAL
);
    localparam integer BYTES = DATA_W / 8;
    localparam integer SZ    = $clog2(BYTES);
    localparam integer WORDS = DATA_W / 32;
    // lint: BYTES - 4 < 2**SZ: the integer expression fits the SZ-bit localparam
    // verilator lint_off WIDTHTRUNC
    localparam [SZ-1:0] OFF_MASK = BYTES - 4;  // byte offset of a word's slot (drops bits 1:0)
    // verilator lint_on WIDTHTRUNC
    localparam [BYTES-1:0] STRB0 = 15;         // strobes of the word in slot 0

    generate
        if (ADDR_W < 32 || ADDR_W > 64) begin : g_bad_addr
            initial $fatal(1, "fl_axi_wr: ADDR_W=%0d must be in 32..64", ADDR_W);
        end
        if (DATA_W < 32 || DATA_W > 1024 || (DATA_W & (DATA_W - 1)) != 0) begin : g_bad_data
            initial $fatal(1, "fl_axi_wr: DATA_W=%0d must be a power of two in 32..1024", DATA_W);
        end
    endgenerate

    localparam [1:0] S_IDLE = 2'd0, S_AW_W = 2'd1, S_B = 2'd2;
    reg [1:0]            state;
    reg                  aw_pend, w_pend;  // channel still to handshake
    // lint: the low address bits pick the word slot through OFF_MASK; AWADDR takes the bus-aligned address
    // verilator lint_off UNUSEDSIGNAL
    reg [ADDR_W-1:0]     addr;
    // verilator lint_on UNUSEDSIGNAL
    reg [31:0]           word;
    reg [BYTES-1:0]      strb;

    assign req_ready     = (state == S_IDLE);
    assign idle          = (state == S_IDLE);
    assign m_axi_awvalid = (state == S_AW_W) & aw_pend;
    assign m_axi_awaddr  = {addr[ADDR_W-1:SZ], {SZ{1'b0}}};
    assign m_axi_awlen   = 8'd0;
    assign m_axi_awsize  = SZ[2:0];
    assign m_axi_awburst = 2'b01;
    assign m_axi_awid    = 1'b0;
    assign m_axi_awcache = 4'b0011;
    assign m_axi_awprot  = 3'b000;
    assign m_axi_wvalid  = (state == S_AW_W) & w_pend;
    assign m_axi_wdata   = {WORDS{word}};
    assign m_axi_wstrb   = strb;
    assign m_axi_wlast   = 1'b1;
    assign m_axi_bready  = (state == S_B);

    wire aw_done = ~aw_pend | m_axi_awready;
    wire w_done  = ~w_pend  | m_axi_wready;

    always @(posedge clk) begin
        if (rst) begin
            state   <= S_IDLE;
            aw_pend <= 1'b0;
            w_pend  <= 1'b0;
            err     <= 1'b0;
        end else begin
            case (state)
                S_IDLE: if (req_valid) begin
                    addr    <= req_addr;
                    word    <= req_data;
                    // 4 strobe bits for the word's slot within the bus word
                    strb    <= STRB0 << (req_addr[SZ-1:0] & OFF_MASK);
                    aw_pend <= 1'b1;
                    w_pend  <= 1'b1;
                    state   <= S_AW_W;
                end
                S_AW_W: begin
                    if (m_axi_awready) aw_pend <= 1'b0;
                    if (m_axi_wready)  w_pend  <= 1'b0;
                    if (aw_done && w_done) state <= S_B;
                end
                S_B: if (m_axi_bvalid) begin
                    if (m_axi_bresp != 2'b00) err <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
