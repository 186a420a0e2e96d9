// LWW-register resolve: per key, the greatest (hlc, node) among the current version and the incoming
// ones, one comparison per cycle. Beats of one key are contiguous and in incoming-index order.
//
// The running best is the only loop: a beat replaces it only when strictly greater, so ties keep the
// current version and, among equal incoming versions, the first (lowest index) one.
module resolve_lww (
    input  logic         clk,
    input  logic         rst,
    input  logic         in_valid,
    output logic         in_ready,
    input  logic         in_first,      // first beat of a key: carries the current version
    input  logic         in_last,       // last beat of a key: emits the winner
    input  logic         in_empty,      // the beat has no incoming version (a key nobody wrote)
    input  logic [63:0]  in_cur_hlc,
    input  logic [31:0]  in_cur_node,
    input  logic [63:0]  in_hlc,
    input  logic [31:0]  in_node,
    input  logic [31:0]  in_index,      // incoming item index, reported as the winner's source
    output logic         out_valid,
    input  logic         out_ready,
    output logic [127:0] out_winner     // {hlc, node, source}; source 0xffffffff: current stays
);
  localparam integer FIFO_DEPTH_LOG2 = 4;
  localparam integer FIFO_DEPTH = 1 << FIFO_DEPTH_LOG2;
  localparam integer PIPE_STAGES = 3;  // registers a..c before the FIFO push
  localparam logic [31:0] NO_SOURCE = 32'hffffffff;

  logic accept;
  assign accept = in_valid && in_ready;

  // ---- stage a: accepted beat.
  logic        a_valid, a_first, a_last, a_empty;
  logic [95:0] a_cur, a_inc;
  logic [31:0] a_index;
  always_ff @(posedge clk) begin
    if (rst) a_valid <= 1'b0;
    else a_valid <= accept;
    if (accept) begin
      a_first <= in_first;
      a_last <= in_last;
      a_empty <= in_empty;
      a_cur <= {in_cur_hlc, in_cur_node};
      a_inc <= {in_hlc, in_node};
      a_index <= in_index;
    end
  end

  // ---- stage b: the running best of the key.
  logic [95:0] best, base;
  logic [31:0] best_src, base_src;
  logic        b_emit;
  assign base = a_first ? a_cur : best;
  assign base_src = a_first ? NO_SOURCE : best_src;
  always_ff @(posedge clk) begin
    if (rst) b_emit <= 1'b0;
    else b_emit <= a_valid && a_last;
    if (a_valid) begin
      if (!a_empty && a_inc > base) begin
        best <= a_inc;
        best_src <= a_index;
      end else begin
        best <= base;
        best_src <= base_src;
      end
    end
  end

  // ---- stage c: result register.
  logic         c_valid;
  logic [127:0] c_winner;
  always_ff @(posedge clk) begin
    if (rst) c_valid <= 1'b0;
    else c_valid <= b_emit;
    c_winner <= {best, best_src};
  end

  logic [FIFO_DEPTH_LOG2:0] fifo_count;
  tally_stream_fifo #(.WIDTH(128), .DEPTH_LOG2(FIFO_DEPTH_LOG2)) results (
      .clk(clk), .rst(rst), .push(c_valid), .push_data(c_winner),
      .out_valid(out_valid), .out_ready(out_ready), .out_data(out_winner), .count(fifo_count));

  always_ff @(posedge clk) begin
    if (rst) in_ready <= 1'b0;
    else in_ready <= ({27'd0, fifo_count} + PIPE_STAGES + 2 <= FIFO_DEPTH);
  end
endmodule
