// fl_axi_rd: AXI4 read master that turns "read B beats from address A" jobs into INCR bursts.
//
//   job (addr, beats, tag) --> [split: <= MAX_BURST beats, never across a 4 KiB page] --> AR
//                                  | per burst: (beats, last-of-job, tag) --> FIFO (OUTSTANDING)
//   R beats ----(in order: one ARID)--> head of the FIFO names them --> out (data, last-of-job, tag)
// Up to OUTSTANDING bursts are in flight: AR is issued while fewer than OUTSTANDING bursts have
// not delivered their last beat, so a stream of short rows pays the memory latency once, not per
// row. A job is accepted (job_ready) as soon as the previous job's bursts are all issued -- not
// when its data is back. All bursts use ARID 0, so R data returns in issue order (AXI4) and the
// FIFO head always describes the beat on R. Backpressure: RREADY = out_ready while a burst is
// outstanding, so at most OUTSTANDING bursts of data are owed to us and none is buffered here.
// The job address must be aligned to one beat (DATA_W/8 bytes); the engine checks that before it
// starts. err is sticky until rst: an R beat with RRESP != OKAY or RLAST where the count says
// otherwise. The data still flows (the engine reports the error in its status register).
// Timing (schedule.py models it): job accepted in cycle h -> its first AR in h + 1 (if room), one AR
// per cycle; the next job can be accepted the cycle after the previous job's last AR.
`default_nettype none
module fl_axi_rd #(
    parameter integer ADDR_W    = 64,   // AXI address bits; 32..64
    parameter integer DATA_W    = 512,  // AXI data bits; power of two, 32..1024
    parameter integer BEATS_W   = 16,   // bits of a job's beat count; 1..32
    parameter integer TAG_W     = 16,   // bits of the tag echoed with every beat of a job; >= 1
    parameter integer MAX_BURST = 64,   // longest burst in beats; power of two, 1..256
    parameter integer OUTSTANDING = 8   // bursts in flight (AR issued, last beat not yet passed); 1..64
) (
    input  wire               clk,
    input  wire               rst,          // synchronous, active high
    // job interface
    input  wire               job_valid,
    output wire               job_ready,    // high while no job's bursts are left to issue
    input  wire [ADDR_W-1:0]  job_addr,     // byte address, aligned to DATA_W/8
    input  wire [BEATS_W-1:0] job_beats,    // >= 1
    input  wire [TAG_W-1:0]   job_tag,
    // beat stream out
    output wire               out_valid,
    input  wire               out_ready,
    output wire [DATA_W-1:0]  out_data,
    output wire               out_last,     // last beat of the job
    output wire [TAG_W-1:0]   out_tag,
    output wire               busy,         // a job or a burst in flight
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
    // lint: single-ID master: RID is always 0, the port exists because AXI4 has it
    // verilator lint_off UNUSEDSIGNAL
    input  wire [0:0]         m_axi_rid
    // verilator lint_on UNUSEDSIGNAL
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
        if (OUTSTANDING < 1 || OUTSTANDING > 64) begin : g_bad_outstanding
            initial $fatal(1, "fl_axi_rd: OUTSTANDING=%0d must be in 1..64", OUTSTANDING);
        end
    endgenerate

    localparam integer OS = (OUTSTANDING < 1) ? 1 : OUTSTANDING;        // sizes stay legal until $fatal
    localparam integer PW = (OS > 1) ? $clog2(OS) : 1;                   // FIFO pointer bits
    localparam integer CW = $clog2(OS + 1);                              // bursts-in-flight counter bits

    reg              active;  // a job's bursts are still being issued
    reg [ADDR_W-1:0] addr;    // address of the next burst
    reg [BEATS_W-1:0] rem;    // beats of the job not yet requested
    reg [TAG_W-1:0]  tag;
    // per issued burst: its length, whether it ends its job, the job's tag (FIFO, OUTSTANDING deep)
    reg [8:0]        f_len  [0:OS-1];
    reg              f_last [0:OS-1];
    reg [TAG_W-1:0]  f_tag  [0:OS-1];
    reg [PW-1:0]     wp, rp;
    reg [CW-1:0]     count;   // bursts issued whose last beat has not passed
    reg [8:0]        rcnt;    // beats of the head burst received

    // Burst length = min(rem, MAX_BURST, beats left in this 4 KiB page).
    wire [12:0] page_left = 13'd4096 - {1'b0, addr[11:0]};
    wire [12:0] page_bts  = page_left >> SZ;
    wire [31:0] rem32     = {{(32-BEATS_W){1'b0}}, rem};
    // lint: compared with the 32-bit integer MAX_BURST; unsigned, zero extension intended
    // verilator lint_off WIDTHEXPAND
    wire [31:0] lim       = (page_bts < MAX_BURST) ? {19'd0, page_bts} : MAX_BURST;
    // verilator lint_on WIDTHEXPAND
    wire [8:0]  blen      = (rem32 < lim) ? rem32[8:0] : lim[8:0];
    wire        blast     = (rem32 <= lim);                  // this burst ends the job

    // lint: compared with the 32-bit integer OS; unsigned, zero extension intended
    // verilator lint_off WIDTHEXPAND
    wire room     = (count < OS);
    // verilator lint_on WIDTHEXPAND
    wire head     = (count != 0);
    wire ar_fire  = m_axi_arvalid & m_axi_arready;
    wire r_fire   = m_axi_rvalid & m_axi_rready;
    wire head_end = (rcnt + 9'd1 == f_len[rp]);          // this beat ends the head burst

    assign job_ready     = !active;
    assign busy          = active | head;
    assign m_axi_arvalid = active & room;                  // room only grows while AR waits: stays valid
    assign m_axi_araddr  = addr;
    assign m_axi_arlen   = blen[7:0] - 8'd1;
    assign m_axi_arsize  = SZ[2:0];
    assign m_axi_arburst = 2'b01;   // INCR
    assign m_axi_arid    = 1'b0;    // one ID: data in issue order
    assign m_axi_arcache = 4'b0011; // normal non-cacheable bufferable (Vitis default)
    assign m_axi_arprot  = 3'b000;
    assign m_axi_rready  = head & out_ready;
    assign out_valid     = head & m_axi_rvalid;
    assign out_data      = m_axi_rdata;
    assign out_last      = f_last[rp] & head_end;
    assign out_tag       = f_tag[rp];

    always @(posedge clk) begin
        if (ar_fire) begin
            f_len[wp]  <= blen;
            f_last[wp] <= blast;
            f_tag[wp]  <= tag;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            active <= 1'b0;
            err    <= 1'b0;
            rem    <= {BEATS_W{1'b0}};
            wp     <= {PW{1'b0}};
            rp     <= {PW{1'b0}};
            count  <= {CW{1'b0}};
            rcnt   <= 9'd0;
        end else begin
            if (job_valid && !active) begin
                addr   <= job_addr;
                rem    <= job_beats;
                tag    <= job_tag;
                active <= 1'b1;
            end
            if (ar_fire) begin
                addr <= addr + ({{(ADDR_W-9){1'b0}}, blen} << SZ);
                // lint: blen <= rem, so the difference fits rem's BEATS_W bits at any width
                // verilator lint_off WIDTHEXPAND
                // verilator lint_off WIDTHTRUNC
                rem  <= rem - blen;
                // verilator lint_on WIDTHEXPAND
                // verilator lint_on WIDTHTRUNC
                // lint: compared with the 32-bit integer OS - 1; unsigned, zero extension intended
                // verilator lint_off WIDTHEXPAND
                wp   <= (wp == OS - 1) ? {PW{1'b0}} : wp + 1'b1;
                // verilator lint_on WIDTHEXPAND
                if (blast) active <= 1'b0;
            end
            if (r_fire) begin
                if (m_axi_rresp != 2'b00 || m_axi_rlast != head_end) err <= 1'b1;
                if (head_end) begin
                    rcnt <= 9'd0;
                    // lint: compared with the 32-bit integer OS - 1; unsigned, zero extension intended
                    // verilator lint_off WIDTHEXPAND
                    rp   <= (rp == OS - 1) ? {PW{1'b0}} : rp + 1'b1;
                    // verilator lint_on WIDTHEXPAND
                end else begin
                    rcnt <= rcnt + 9'd1;
                end
            end
            count <= count + {{(CW-1){1'b0}}, ar_fire} - {{(CW-1){1'b0}}, r_fire & head_end};
        end
    end
endmodule
`default_nettype wire
