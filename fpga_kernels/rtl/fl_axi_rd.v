// fl_axi_rd: AXI4 read master that turns "read B beats from address A" jobs into INCR bursts.
//
//   job (addr, beats, tag) --> [split: <= MAX_BURST beats, never across a 4 KiB page] --> AR
//   R beats -----------------> out stream (data, last-of-job, tag), honouring out_ready
// One burst outstanding at a time (AR is issued only after the previous burst's last beat):
// simple and always correct; the cost is the read latency once per burst. The job address
// must be aligned to one beat (DATA_W/8 bytes); the engine checks that before it starts.
// err is sticky until rst: an R beat with RRESP != OKAY or RLAST where the count says
// otherwise. The data still flows (the engine reports the error in its status register).
`default_nettype none
module fl_axi_rd #(
    parameter integer ADDR_W    = 64,   // AXI address bits; 32..64
    parameter integer DATA_W    = 512,  // AXI data bits; power of two, 32..1024
    parameter integer BEATS_W   = 16,   // bits of a job's beat count; 1..32
    parameter integer TAG_W     = 16,   // bits of the tag echoed with every beat of a job; >= 1
    parameter integer MAX_BURST = 64    // longest burst in beats; power of two, 1..256
) (
    input  wire               clk,
    input  wire               rst,          // synchronous, active high
    // job interface
    input  wire               job_valid,
    output wire               job_ready,    // high only while no job is in progress
    input  wire [ADDR_W-1:0]  job_addr,     // byte address, aligned to DATA_W/8
    input  wire [BEATS_W-1:0] job_beats,    // >= 1
    input  wire [TAG_W-1:0]   job_tag,
    // beat stream out
    output wire               out_valid,
    input  wire               out_ready,
    output wire [DATA_W-1:0]  out_data,
    output wire               out_last,     // last beat of the job
    output wire [TAG_W-1:0]   out_tag,
    output wire               busy,
    output reg                err,
    // AXI4 read channels
    output wire               m_axi_arvalid,
    input  wire               m_axi_arready,
    output wire [ADDR_W-1:0]  m_axi_araddr,
    output wire [7:0]         m_axi_arlen,
    output wire [2:0]         m_axi_arsize,
    output wire [1:0]         m_axi_arburst,
    output wire [0:0]         m_axi_arid,
    output wire [3:0]         m_axi_arcache,
    output wire [2:0]         m_axi_arprot,
    input  wire               m_axi_rvalid,
    output wire               m_axi_rready,
    input  wire [DATA_W-1:0]  m_axi_rdata,
    input  wire [1:0]         m_axi_rresp,
    input  wire               m_axi_rlast,
    input  wire [0:0]         m_axi_rid
);
    localparam integer BYTES = DATA_W / 8;
    localparam integer SZ    = $clog2(BYTES);        // AxSIZE: log2 bytes per beat

    generate
        if (ADDR_W < 32 || ADDR_W > 64) begin : g_bad_addr
            initial $fatal(1, "fl_axi_rd: ADDR_W=%0d must be in 32..64", ADDR_W);
        end
        if (DATA_W < 32 || DATA_W > 1024 || (DATA_W & (DATA_W - 1)) != 0) begin : g_bad_data
            initial $fatal(1, "fl_axi_rd: DATA_W=%0d must be a power of two in 32..1024", DATA_W);
        end
        if (BEATS_W < 1 || BEATS_W > 32) begin : g_bad_beats
            initial $fatal(1, "fl_axi_rd: BEATS_W=%0d must be in 1..32", BEATS_W);
        end
        if (TAG_W < 1) begin : g_bad_tag
            initial $fatal(1, "fl_axi_rd: TAG_W=%0d must be >= 1", TAG_W);
        end
        if (MAX_BURST < 1 || MAX_BURST > 256 || (MAX_BURST & (MAX_BURST - 1)) != 0) begin : g_bad_burst
            initial $fatal(1, "fl_axi_rd: MAX_BURST=%0d must be a power of two in 1..256", MAX_BURST);
        end
    endgenerate

    localparam [1:0] S_IDLE = 2'd0, S_AR = 2'd1, S_R = 2'd2;
    reg [1:0]         state;
    reg [ADDR_W-1:0]  addr;   // address of the next beat to request
    reg [BEATS_W-1:0] rem;    // beats of the job not yet received
    reg [8:0]         cnt;    // beats of the current burst not yet received
    reg [TAG_W-1:0]   tag;

    // Burst length = min(rem, MAX_BURST, beats left in this 4 KiB page).
    wire [12:0] page_left = 13'd4096 - {1'b0, addr[11:0]};
    wire [12:0] page_bts  = page_left >> SZ;
    wire [31:0] rem32     = {{(32-BEATS_W){1'b0}}, rem};
    wire [31:0] lim       = (page_bts < MAX_BURST) ? {19'd0, page_bts} : MAX_BURST;
    wire [8:0]  blen      = (rem32 < lim) ? rem32[8:0] : lim[8:0];

    wire r_fire = m_axi_rvalid & m_axi_rready;

    assign job_ready     = (state == S_IDLE);
    assign busy          = (state != S_IDLE);
    assign m_axi_arvalid = (state == S_AR);
    assign m_axi_araddr  = addr;
    assign m_axi_arlen   = blen[7:0] - 8'd1;
    assign m_axi_arsize  = SZ[2:0];
    assign m_axi_arburst = 2'b01;   // INCR
    assign m_axi_arid    = 1'b0;
    assign m_axi_arcache = 4'b0011; // normal non-cacheable bufferable (Vitis default)
    assign m_axi_arprot  = 3'b000;
    assign m_axi_rready  = (state == S_R) & out_ready;
    assign out_valid     = (state == S_R) & m_axi_rvalid;
    assign out_data      = m_axi_rdata;
    assign out_last      = (rem == 1);
    assign out_tag       = tag;

    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE;
            err   <= 1'b0;
            rem   <= {BEATS_W{1'b0}};
            cnt   <= 9'd0;
        end else begin
            case (state)
                S_IDLE: if (job_valid) begin
                    addr  <= job_addr;
                    rem   <= job_beats;
                    tag   <= job_tag;
                    state <= S_AR;
                end
                S_AR: if (m_axi_arready) begin
                    cnt   <= blen;
                    state <= S_R;
                end
                S_R: if (r_fire) begin
                    if (m_axi_rresp != 2'b00 || m_axi_rlast != (cnt == 9'd1)) err <= 1'b1;
                    addr <= addr + BYTES;
                    rem  <= rem - 1'b1;
                    cnt  <= cnt - 1'b1;
                    if (cnt == 9'd1) state <= (rem == 1) ? S_IDLE : S_AR;
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
