// Result FIFO at the output of every kernel: results are pushed by a free-running pipeline and
// drained under the consumer's back-pressure; kernels stop accepting input before it can overflow.
module tally_stream_fifo #(
    parameter integer WIDTH = 32,
    parameter integer DEPTH_LOG2 = 4
) (
    input  logic                  clk,
    input  logic                  rst,
    input  logic                  push,
    input  logic [WIDTH-1:0]      push_data,
    output logic                  out_valid,
    input  logic                  out_ready,
    output logic [WIDTH-1:0]      out_data,
    output logic [DEPTH_LOG2:0]   count
);
  localparam integer DEPTH = 1 << DEPTH_LOG2;

  logic [WIDTH-1:0] mem [0:DEPTH-1];
  logic [DEPTH_LOG2-1:0] rd_ptr, wr_ptr;
  logic pop;

  assign out_valid = (count != 0);
  assign out_data = mem[rd_ptr];
  assign pop = out_valid && out_ready;

  always_ff @(posedge clk) begin
    if (push) mem[wr_ptr] <= push_data;
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      rd_ptr <= '0;
      wr_ptr <= '0;
      count <= '0;
    end else begin
      if (push) wr_ptr <= wr_ptr + 1'b1;
      if (pop) rd_ptr <= rd_ptr + 1'b1;
      count <= count + {{DEPTH_LOG2{1'b0}}, push} - {{DEPTH_LOG2{1'b0}}, pop};
`ifndef SYNTHESIS
      // The kernels' credit check makes these impossible; a hit means the margin is wrong.
      if (push && !pop && count == DEPTH[DEPTH_LOG2:0]) $fatal(1, "tally_stream_fifo overflow");
`endif
    end
  end
endmodule
