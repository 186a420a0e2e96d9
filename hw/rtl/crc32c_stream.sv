// CRC32C of variable-length items streamed 32 bytes per cycle (one beat per clock), pipelined.
// Beats carry byte j of the item at data[8*j +: 8]; the last beat of an item says how many bytes it holds.
//
// Per beat the register takes state' = A32(state) ^ D(data): D is the CRC of the 32 data bytes from
// a zero state, A32 advances the state over 32 zero bytes. The tail beat is zero-padded to 32 bytes;
// since padding only advances the state, the result is recovered after the loop by advancing it back
// (inverse matrices for 1..32 bytes), so the feedback loop is a single 32-input XOR level.
module crc32c_stream (
    input  logic         clk,
    input  logic         rst,
    // Input stream: one beat of an item per transfer (in_valid && in_ready).
    input  logic         in_valid,
    output logic         in_ready,
    input  logic [255:0] in_data,
    input  logic [5:0]   in_bytes,   // bytes in a last beat, 0..32 (0 only for an empty item); ignored otherwise
    input  logic         in_last,
    // Output stream: one CRC32C per item, in item order.
    output logic         out_valid,
    input  logic         out_ready,
    output logic [31:0]  out_crc
);
`include "crc32c_matrices.svh"

  localparam integer BEAT_BYTES = 32;
  localparam integer FIFO_DEPTH_LOG2 = 4;
  localparam integer FIFO_DEPTH = 1 << FIFO_DEPTH_LOG2;
  // Registers between the input and the FIFO push (stages a..e); each may hold one result.
  localparam integer PIPE_STAGES = 5;

  // Each output bit is the parity of the input bits its matrix row selects.
  function automatic [31:0] parity_rows32(input [32*32-1:0] rows, input [31:0] x);
    integer i;
    for (i = 0; i < 32; i = i + 1) parity_rows32[i] = ^(x & rows[i*32 +: 32]);
  endfunction

  function automatic [31:0] parity_rows256(input [32*256-1:0] rows, input [255:0] x);
    integer i;
    for (i = 0; i < 32; i = i + 1) parity_rows256[i] = ^(x & rows[i*256 +: 256]);
  endfunction

  // ---- stage a: accepted beat with the tail's stray bytes zeroed, and the padding of the tail.
  // Masking here rather than in stage b halves the fan-in of stage b's XOR trees.
  logic         a_valid, a_first, a_last;
  logic [255:0] a_data;
  logic [5:0]   a_pad;
  logic         next_is_first;
  logic [5:0]   bytes_clamped;
  logic [31:0]  keep;
  logic [255:0] in_masked;
  logic         accept;

  assign accept = in_valid && in_ready;
  assign bytes_clamped = (in_bytes > 6'd32) ? 6'd32 : in_bytes;
  always_comb begin
    for (int j = 0; j < BEAT_BYTES; j++) begin
      keep[j] = !in_last || (j < bytes_clamped);
      in_masked[8*j +: 8] = keep[j] ? in_data[8*j +: 8] : 8'h00;
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      a_valid <= 1'b0;
      next_is_first <= 1'b1;
    end else begin
      a_valid <= accept;
      if (accept) next_is_first <= in_last;
    end
    if (accept) begin
      a_data <= in_masked;
      a_first <= next_is_first;
      a_last <= in_last;
      a_pad <= in_last ? 6'd32 - bytes_clamped : 6'd0;
    end
  end

  // ---- stage b: data term of the beat (no dependency on the running state).
  logic        b_valid, b_first, b_last;
  logic [31:0] b_term;
  logic [5:0]  b_pad;
  always_ff @(posedge clk) begin
    if (rst) b_valid <= 1'b0;
    else b_valid <= a_valid;
    b_term <= parity_rows256(CRC32C_DATA_ROWS, a_data);
    b_first <= a_first;
    b_last <= a_last;
    b_pad <= a_pad;
  end

  // ---- stage c: the running state, the only loop.
  logic        c_valid;
  logic [31:0] c_state;
  logic [5:0]  c_pad;
  logic [31:0] state_in;
  assign state_in = b_first ? 32'hffffffff : c_state;
  always_ff @(posedge clk) begin
    if (rst) c_valid <= 1'b0;
    else c_valid <= b_valid && b_last;
    if (b_valid) begin
      c_state <= parity_rows32(CRC32C_ADVANCE32_ROWS, state_in) ^ b_term;
      c_pad <= b_pad;
    end
  end

  // ---- stages d, e: undo the advance over the tail's zero padding, then the final inversion.
  logic [31:0] un1, un2, un4, un8, un16, un32;
  assign un1 = c_pad[0] ? parity_rows32(CRC32C_UNADVANCE1_ROWS, c_state) : c_state;
  assign un2 = c_pad[1] ? parity_rows32(CRC32C_UNADVANCE2_ROWS, un1) : un1;
  assign un4 = c_pad[2] ? parity_rows32(CRC32C_UNADVANCE4_ROWS, un2) : un2;

  logic        d_valid;
  logic [31:0] d_state;
  logic [2:0]  d_pad_high;
  always_ff @(posedge clk) begin
    if (rst) d_valid <= 1'b0;
    else d_valid <= c_valid;
    d_state <= un4;
    d_pad_high <= c_pad[5:3];
  end

  assign un8 = d_pad_high[0] ? parity_rows32(CRC32C_UNADVANCE8_ROWS, d_state) : d_state;
  assign un16 = d_pad_high[1] ? parity_rows32(CRC32C_UNADVANCE16_ROWS, un8) : un8;
  assign un32 = d_pad_high[2] ? parity_rows32(CRC32C_UNADVANCE32_ROWS, un16) : un16;

  logic        e_valid;
  logic [31:0] e_crc;
  always_ff @(posedge clk) begin
    if (rst) e_valid <= 1'b0;
    else e_valid <= d_valid;
    e_crc <= ~un32;
  end

  // ---- result FIFO and credit: accept only while every result in flight still fits.
  logic [FIFO_DEPTH_LOG2:0] fifo_count;
  tally_stream_fifo #(.WIDTH(32), .DEPTH_LOG2(FIFO_DEPTH_LOG2)) results (
      .clk(clk), .rst(rst), .push(e_valid), .push_data(e_crc),
      .out_valid(out_valid), .out_ready(out_ready), .out_data(out_crc), .count(fifo_count));

  // Registered so that in_ready does not depend combinationally on out_ready; the extra slot covers
  // the push that can land while the registered value is one cycle old.
  always_ff @(posedge clk) begin
    if (rst) in_ready <= 1'b0;
    else in_ready <= ({27'd0, fifo_count} + PIPE_STAGES + 2 <= FIFO_DEPTH);
  end
endmodule
