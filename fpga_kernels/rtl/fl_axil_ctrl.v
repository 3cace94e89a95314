// fl_axil_ctrl: s_axi_control register file with Vitis ap_ctrl_hs semantics.
//
// Register map (byte offsets; all registers 32 bits; 64-bit pointers take two words, low first):
//   0x00 control  bit0 ap_start (R/W, cleared by ap_ready unless auto_restart)
//                 bit1 ap_done (R, clear on read)   bit2 ap_idle (R)
//                 bit3 ap_ready (R, clear on read)  bit7 auto_restart (R/W)
//   0x04 GIE      bit0 global interrupt enable
//   0x08 IER      bit0 ap_done, bit1 ap_ready interrupt enables
//   0x0C ISR      bit0 ap_done, bit1 ap_ready status (toggle on write 1)
//   0x10/0x14 sim_ptr      0x18 n      0x1C k      0x20 ld (row stride in elements)
//   0x28/0x2C out_ids_ptr  0x30/0x34 out_gains_ptr  0x38/0x3C out_weights_ptr
//   0x40/0x44 out_stats_ptr (the kernel writes uint64 {status, cycles} there at the end)
//   0x48 status (R): argument / AXI error bits of the last run (0 = ok; see fl_engine.v)
//   0x4C/0x50 cycles (R): clock cycles of the last run (see fl_engine.v)
//   0x54 mode (0 / 2 exact, 1 stochastic)  0x58 seed  0x5C sample_size (stochastic candidates per step)
//   0x60 parts (0: one class from n/k/seed/sample_size; P >= 1: P parts from the descriptors)
//   0x68/0x6C parts_ptr (uint32 [P][4] part descriptors {n, k, seed, sample_size})
// Unmapped offsets read 0 and ignore writes. Responses are always OKAY.
// interrupt = GIE & |(ISR & IER-gated events); the Vitis shell wires it to the host.
`default_nettype none
module fl_axil_ctrl #(
    parameter integer C_ADDR_W = 7   // s_axi_control address bits; 7..12 (map spans 0x00..0x6C)
) (
    input  wire                clk,
    input  wire                rst,          // synchronous, active high
    // AXI4-Lite slave
    input  wire                s_axi_awvalid,
    output wire                s_axi_awready,
    input  wire [C_ADDR_W-1:0] s_axi_awaddr,
    input  wire                s_axi_wvalid,
    output wire                s_axi_wready,
    input  wire [31:0]         s_axi_wdata,
    input  wire [3:0]          s_axi_wstrb,
    output wire                s_axi_bvalid,
    input  wire                s_axi_bready,
    output wire [1:0]          s_axi_bresp,
    input  wire                s_axi_arvalid,
    output wire                s_axi_arready,
    // lint: registers are 32-bit words: the byte-offset bits of an address are ignored
    // verilator lint_off UNUSEDSIGNAL
    input  wire [C_ADDR_W-1:0] s_axi_araddr,
    // verilator lint_on UNUSEDSIGNAL
    output wire                s_axi_rvalid,
    input  wire                s_axi_rready,
    output wire [31:0]         s_axi_rdata,
    output wire [1:0]          s_axi_rresp,
    // kernel handshake
    output wire                ap_start,
    input  wire                ap_done,      // one-cycle pulse
    input  wire                ap_idle,
    input  wire                ap_ready,     // one-cycle pulse
    // lint: 'interrupt' is the port name Vitis requires of an RTL kernel
    // verilator lint_off SYMRSVDWORD
    output wire                interrupt,
    // verilator lint_on SYMRSVDWORD
    // arguments
    output wire [63:0]         sim_ptr,
    output wire [31:0]         n,
    output wire [31:0]         k,
    output wire [31:0]         ld,
    output wire [63:0]         out_ids_ptr,
    output wire [63:0]         out_gains_ptr,
    output wire [63:0]         out_weights_ptr,
    output wire [63:0]         out_stats_ptr,
    output wire [31:0]         mode,
    output wire [31:0]         seed,
    output wire [31:0]         sample_size,
    output wire [31:0]         parts,
    output wire [63:0]         parts_ptr,
    // read-only results
    input  wire [31:0]         status,
    input  wire [63:0]         cycles
);
    generate
        if (C_ADDR_W < 7 || C_ADDR_W > 12) begin : g_bad_addr
            initial $fatal(1, "fl_axil_ctrl: C_ADDR_W=%0d must be in 7..12", C_ADDR_W);
        end
    endgenerate

    // ---- write path: AW and W may arrive in any order; B after both ----
    reg                aw_have, w_have, bvalid;
    // lint: registers are 32-bit words: the byte-offset bits of an address are ignored
    // verilator lint_off UNUSEDSIGNAL
    reg [C_ADDR_W-1:0] waddr;
    // verilator lint_on UNUSEDSIGNAL
    reg [31:0]         wdata;
    reg [3:0]          wstrb;
    assign s_axi_awready = ~aw_have & ~bvalid;
    assign s_axi_wready  = ~w_have & ~bvalid;
    assign s_axi_bvalid  = bvalid;
    assign s_axi_bresp   = 2'b00;

    // ---- read path ----
    reg        rvalid;
    reg [31:0] rdata;
    assign s_axi_arready = ~rvalid;
    assign s_axi_rvalid  = rvalid;
    assign s_axi_rdata   = rdata;
    assign s_axi_rresp   = 2'b00;

    // ---- registers ----
    reg        int_start, int_done, int_ready, int_auto, int_gie;
    reg [1:0]  int_ier, int_isr;
    reg [31:0] r [4:27];  // argument words at 4*i (18..20 are the read-only status / cycles, 25 unused)

    assign ap_start        = int_start;
    assign interrupt       = int_gie & (|int_isr);
    assign sim_ptr         = {r[5], r[4]};
    assign n               = r[6];
    assign k               = r[7];
    assign ld              = r[8];
    assign out_ids_ptr     = {r[11], r[10]};
    assign out_gains_ptr   = {r[13], r[12]};
    assign out_weights_ptr = {r[15], r[14]};
    assign out_stats_ptr   = {r[17], r[16]};
    assign mode            = r[21];
    assign seed            = r[22];
    assign sample_size     = r[23];
    assign parts           = r[24];
    assign parts_ptr       = {r[27], r[26]};

    wire do_write = aw_have & w_have & ~bvalid;
    wire [C_ADDR_W-3:0] widx = waddr[C_ADDR_W-1:2];
    wire ar_fire = s_axi_arvalid & s_axi_arready;
    wire [C_ADDR_W-3:0] ridx = s_axi_araddr[C_ADDR_W-1:2];
    wire [31:0] wmask = {{8{wstrb[3]}}, {8{wstrb[2]}}, {8{wstrb[1]}}, {8{wstrb[0]}}};

    integer q;
    always @(posedge clk) begin
        if (rst) begin
            aw_have <= 1'b0; w_have <= 1'b0; bvalid <= 1'b0; rvalid <= 1'b0;
            int_start <= 1'b0; int_done <= 1'b0; int_ready <= 1'b0; int_auto <= 1'b0;
            int_gie <= 1'b0; int_ier <= 2'b00; int_isr <= 2'b00;
            for (q = 4; q <= 27; q = q + 1) r[q] <= 32'd0;
        end else begin
            // address / data capture
            if (s_axi_awvalid && s_axi_awready) begin aw_have <= 1'b1; waddr <= s_axi_awaddr; end
            if (s_axi_wvalid && s_axi_wready) begin w_have <= 1'b1; wdata <= s_axi_wdata; wstrb <= s_axi_wstrb; end
            if (bvalid && s_axi_bready) bvalid <= 1'b0;

            // kernel events (a host write in the same cycle takes precedence below)
            if (ap_ready) int_start <= int_auto;
            if (ap_done)  int_done  <= 1'b1;
            if (ap_ready) int_ready <= 1'b1;
            if (ap_done  && int_ier[0]) int_isr[0] <= 1'b1;
            if (ap_ready && int_ier[1]) int_isr[1] <= 1'b1;

            if (do_write) begin
                aw_have <= 1'b0; w_have <= 1'b0; bvalid <= 1'b1;
                if (widx == 0) begin
                    if (wstrb[0] && wdata[0]) int_start <= 1'b1;
                    if (wstrb[0]) int_auto <= wdata[7];
                end else if (widx == 1) begin
                    if (wstrb[0]) int_gie <= wdata[0];
                end else if (widx == 2) begin
                    if (wstrb[0]) int_ier <= wdata[1:0];
                end else if (widx == 3) begin
                    if (wstrb[0]) int_isr <= int_isr ^ wdata[1:0];
                end else if ((widx >= 4 && widx <= 17) || (widx >= 21 && widx <= 24) || widx == 26 || widx == 27) begin
                    r[widx] <= (r[widx] & ~wmask) | (wdata & wmask);
                end
            end

            // reads (clear-on-read of done / ready happens at the address handshake)
            if (rvalid && s_axi_rready) rvalid <= 1'b0;
            if (ar_fire) begin
                rvalid <= 1'b1;
                case (ridx)
                    0: begin
                        rdata <= {24'd0, int_auto, 3'b000, int_ready, ap_idle, int_done, int_start};
                        int_done  <= ap_done;   // an event in this very cycle is not lost
                        int_ready <= ap_ready;
                    end
                    1:  rdata <= {31'd0, int_gie};
                    2:  rdata <= {30'd0, int_ier};
                    3:  rdata <= {30'd0, int_isr};
                    4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 21, 22, 23, 24, 26, 27: rdata <= r[ridx];
                    18: rdata <= status;
                    19: rdata <= cycles[31:0];
                    20: rdata <= cycles[63:32];
                    default: rdata <= 32'd0;
                endcase
            end
        end
    end
endmodule
`default_nettype wire
