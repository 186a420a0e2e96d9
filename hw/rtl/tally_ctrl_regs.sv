// AXI4-Lite control slave of a kernel on the card: the register map of hw/README.md (Vitis
// ap_ctrl_hs), giving the DMA shell its start pulse, buffer addresses and item count.
//
// One write and one read in flight at a time, which is all a host driver issues; writes need AW and W
// together. Unmapped addresses read as zero and ignore writes (responses are always OKAY).
module tally_ctrl_regs (
    input  logic        clk,
    input  logic        rst,
    // AXI4-Lite slave
    input  logic [7:0]  s_axi_awaddr,
    input  logic        s_axi_awvalid,
    output logic        s_axi_awready,
    input  logic [31:0] s_axi_wdata,
    input  logic [3:0]  s_axi_wstrb,
    input  logic        s_axi_wvalid,
    output logic        s_axi_wready,
    output logic [1:0]  s_axi_bresp,
    output logic        s_axi_bvalid,
    input  logic        s_axi_bready,
    input  logic [7:0]  s_axi_araddr,
    input  logic        s_axi_arvalid,
    output logic        s_axi_arready,
    output logic [31:0] s_axi_rdata,
    output logic [1:0]  s_axi_rresp,
    output logic        s_axi_rvalid,
    input  logic        s_axi_rready,
    output logic        irq,        // GIE and any enabled ISR bit
    // Kernel side (ap_ctrl_hs)
    output logic        ap_start,   // held high until the kernel raises ap_ready
    input  logic        ap_ready,
    input  logic        ap_done,    // one-cycle pulse at the end of a run
    input  logic        ap_idle,
    input  logic [63:0] cycles,     // the shell's cycle count of the last run
    output logic [63:0] arg_in0,
    output logic [63:0] arg_in1,
    output logic [63:0] arg_out,
    output logic [31:0] arg_count
);
  localparam logic [7:0] ADDR_CONTROL = 8'h00;
  localparam logic [7:0] ADDR_GIE = 8'h04;
  localparam logic [7:0] ADDR_IER = 8'h08;
  localparam logic [7:0] ADDR_ISR = 8'h0c;
  localparam logic [7:0] ADDR_IN0 = 8'h10;
  localparam logic [7:0] ADDR_IN1 = 8'h1c;
  localparam logic [7:0] ADDR_OUT = 8'h28;
  localparam logic [7:0] ADDR_COUNT = 8'h34;
  localparam logic [7:0] ADDR_CYCLES = 8'h3c;

  logic       done_seen;    // CONTROL bit 1, cleared when CONTROL is read
  logic       gie;
  logic [1:0] ier;          // bit 0 done, bit 1 ready
  logic [1:0] isr;

  // Byte-wise merge of a write into a 32-bit register.
  function automatic [31:0] merge(input [31:0] old, input [31:0] data, input [3:0] strb);
    integer b;
    for (b = 0; b < 4; b = b + 1) merge[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];
  endfunction

  // ---- writes
  logic write_fire;
  assign s_axi_awready = s_axi_awvalid && s_axi_wvalid && !s_axi_bvalid;
  assign s_axi_wready = s_axi_awready;
  assign write_fire = s_axi_awready;
  assign s_axi_bresp = 2'b00;

  // ---- reads
  logic read_fire;
  assign s_axi_arready = !s_axi_rvalid;
  assign read_fire = s_axi_arvalid && s_axi_arready;
  assign s_axi_rresp = 2'b00;

  always_ff @(posedge clk) begin
    if (rst) begin
      s_axi_bvalid <= 1'b0;
      s_axi_rvalid <= 1'b0;
      s_axi_rdata <= 32'd0;
      ap_start <= 1'b0;
      done_seen <= 1'b0;
      gie <= 1'b0;
      ier <= 2'b00;
      isr <= 2'b00;
      arg_in0 <= 64'd0;
      arg_in1 <= 64'd0;
      arg_out <= 64'd0;
      arg_count <= 32'd0;
    end else begin
      if (s_axi_bvalid && s_axi_bready) s_axi_bvalid <= 1'b0;
      if (s_axi_rvalid && s_axi_rready) s_axi_rvalid <= 1'b0;

      // Kernel events first; a register access in the same cycle takes precedence below.
      if (ap_start && ap_ready) ap_start <= 1'b0;
      if (ap_done) done_seen <= 1'b1;
      if (ap_done && ier[0]) isr[0] <= 1'b1;
      if (ap_ready && ier[1]) isr[1] <= 1'b1;

      if (write_fire) begin
        s_axi_bvalid <= 1'b1;
        case (s_axi_awaddr)
          ADDR_CONTROL: if (s_axi_wstrb[0] && s_axi_wdata[0]) ap_start <= 1'b1;
          ADDR_GIE: if (s_axi_wstrb[0]) gie <= s_axi_wdata[0];
          ADDR_IER: if (s_axi_wstrb[0]) ier <= s_axi_wdata[1:0];
          ADDR_ISR: if (s_axi_wstrb[0]) isr <= isr ^ s_axi_wdata[1:0];  // toggle on write
          ADDR_IN0: arg_in0[31:0] <= merge(arg_in0[31:0], s_axi_wdata, s_axi_wstrb);
          ADDR_IN0 + 8'h04: arg_in0[63:32] <= merge(arg_in0[63:32], s_axi_wdata, s_axi_wstrb);
          ADDR_IN1: arg_in1[31:0] <= merge(arg_in1[31:0], s_axi_wdata, s_axi_wstrb);
          ADDR_IN1 + 8'h04: arg_in1[63:32] <= merge(arg_in1[63:32], s_axi_wdata, s_axi_wstrb);
          ADDR_OUT: arg_out[31:0] <= merge(arg_out[31:0], s_axi_wdata, s_axi_wstrb);
          ADDR_OUT + 8'h04: arg_out[63:32] <= merge(arg_out[63:32], s_axi_wdata, s_axi_wstrb);
          ADDR_COUNT: arg_count <= merge(arg_count, s_axi_wdata, s_axi_wstrb);
          default: ;
        endcase
      end

      if (read_fire) begin
        s_axi_rvalid <= 1'b1;
        case (s_axi_araddr)
          ADDR_CONTROL: begin
            s_axi_rdata <= {28'd0, ap_ready, ap_idle, done_seen, ap_start};
            done_seen <= ap_done;  // clear on read, unless a new run ends in this very cycle
          end
          ADDR_GIE: s_axi_rdata <= {31'd0, gie};
          ADDR_IER: s_axi_rdata <= {30'd0, ier};
          ADDR_ISR: s_axi_rdata <= {30'd0, isr};
          ADDR_IN0: s_axi_rdata <= arg_in0[31:0];
          ADDR_IN0 + 8'h04: s_axi_rdata <= arg_in0[63:32];
          ADDR_IN1: s_axi_rdata <= arg_in1[31:0];
          ADDR_IN1 + 8'h04: s_axi_rdata <= arg_in1[63:32];
          ADDR_OUT: s_axi_rdata <= arg_out[31:0];
          ADDR_OUT + 8'h04: s_axi_rdata <= arg_out[63:32];
          ADDR_COUNT: s_axi_rdata <= arg_count;
          ADDR_CYCLES: s_axi_rdata <= cycles[31:0];
          ADDR_CYCLES + 8'h04: s_axi_rdata <= cycles[63:32];
          default: s_axi_rdata <= 32'd0;
        endcase
      end
    end
  end

  assign irq = gie && (isr != 2'b00);
endmodule
