// Quorum tally of one Raft group (or one quorum read) per cycle over up to 8 replica slots, pipelined.
// Commit mode: the largest key held by a majority of the masked slots. Read mode: the newest reply.
//
// Both modes rank the masked slots in descending key order, ties broken by the lower slot first
// (28 pairwise comparators). Commit picks rank n/2, which a majority holds; read picks rank 0 and
// marks as stale every slot with a strictly greater key somewhere in the mask.
module tally_quorum (
    input  logic         clk,
    input  logic         rst,
    input  logic         in_valid,
    output logic         in_ready,
    input  logic         in_read_mode,  // 0: commit index, 1: newest reply
    input  logic [7:0]   in_mask,       // slots taking part: voters, or replicas that replied
    input  logic [767:0] in_keys,       // slot r at [96*r +: 96]: commit {32'b0, match}; read {hlc, node}
    output logic         out_valid,
    input  logic         out_ready,
    output logic [63:0]  out_result     // commit: index (0 with no voters); read: {48'b0, stale, newest}
);
  localparam integer SLOTS = 8;
  localparam integer KEY_BITS = 96;
  localparam integer FIFO_DEPTH_LOG2 = 4;
  localparam integer FIFO_DEPTH = 1 << FIFO_DEPTH_LOG2;
  localparam integer PIPE_STAGES = 4;  // registers a..d before the FIFO push
  localparam logic [7:0] NO_REPLICA = 8'hff;

  logic accept;
  assign accept = in_valid && in_ready;

  // ---- stage a: accepted group.
  logic         a_valid, a_read;
  logic [7:0]   a_mask;
  logic [767:0] a_keys;
  always_ff @(posedge clk) begin
    if (rst) a_valid <= 1'b0;
    else a_valid <= accept;
    if (accept) begin
      a_read <= in_read_mode;
      a_mask <= in_mask;
      a_keys <= in_keys;
    end
  end

  // ---- stage b: gt[i*8+j] = key i > key j.
  logic        b_valid, b_read;
  logic [7:0]  b_mask;
  logic [63:0] b_gt;
  logic [511:0] b_low;  // low 64 bits of each key, the commit result candidates
  always_ff @(posedge clk) begin
    if (rst) b_valid <= 1'b0;
    else b_valid <= a_valid;
    for (int i = 0; i < SLOTS; i++) begin
      for (int j = 0; j < SLOTS; j++) begin
        b_gt[i*SLOTS + j] <= (i != j) && (a_keys[KEY_BITS*i +: KEY_BITS] > a_keys[KEY_BITS*j +: KEY_BITS]);
      end
      b_low[64*i +: 64] <= a_keys[KEY_BITS*i +: 64];
    end
    b_read <= a_read;
    b_mask <= a_mask;
  end

  // ---- stage c: rank of each slot among the masked ones, the target rank, stale slots.
  logic [3:0]  rank [0:SLOTS-1];
  logic [3:0]  voters;
  logic [7:0]  stale;
  always_comb begin
    voters = 4'd0;
    for (int j = 0; j < SLOTS; j++) voters = voters + {3'd0, b_mask[j]};
    for (int i = 0; i < SLOTS; i++) begin
      rank[i] = 4'd0;
      stale[i] = 1'b0;
      for (int j = 0; j < SLOTS; j++) begin
        // Slot j sorts before slot i: strictly greater, or equal and lower-numbered.
        if (j != i && b_mask[j] && (b_gt[j*SLOTS + i] || (!b_gt[i*SLOTS + j] && j < i))) rank[i] = rank[i] + 4'd1;
        if (b_mask[j] && b_gt[j*SLOTS + i]) stale[i] = b_mask[i];
      end
    end
  end

  logic        c_valid, c_read, c_none;
  logic [7:0]  c_pick;
  logic [7:0]  c_stale;
  logic [511:0] c_low;
  always_ff @(posedge clk) begin
    if (rst) c_valid <= 1'b0;
    else c_valid <= b_valid;
    for (int i = 0; i < SLOTS; i++) begin
      c_pick[i] <= b_mask[i] && (rank[i] == (b_read ? 4'd0 : {1'b0, voters[3:1]}));
    end
    c_none <= (voters == 4'd0);
    c_stale <= stale;
    c_read <= b_read;
    c_low <= b_low;
  end

  // ---- stage d: the picked slot (exactly one when the mask is not empty).
  logic [63:0] picked_key;
  logic [7:0]  picked_slot;
  always_comb begin
    picked_key = 64'd0;
    picked_slot = NO_REPLICA;
    for (int i = SLOTS - 1; i >= 0; i--) begin
      if (c_pick[i]) begin
        picked_key = c_low[64*i +: 64];
        picked_slot = i[7:0];
      end
    end
  end

  logic        d_valid;
  logic [63:0] d_result;
  always_ff @(posedge clk) begin
    if (rst) d_valid <= 1'b0;
    else d_valid <= c_valid;
    if (c_read) d_result <= {48'd0, c_stale, c_none ? NO_REPLICA : picked_slot};
    else d_result <= c_none ? 64'd0 : picked_key;
  end

  logic [FIFO_DEPTH_LOG2:0] fifo_count;
  tally_stream_fifo #(.WIDTH(64), .DEPTH_LOG2(FIFO_DEPTH_LOG2)) results (
      .clk(clk), .rst(rst), .push(d_valid), .push_data(d_result),
      .out_valid(out_valid), .out_ready(out_ready), .out_data(out_result), .count(fifo_count));

  always_ff @(posedge clk) begin
    if (rst) in_ready <= 1'b0;
    else in_ready <= ({27'd0, fifo_count} + PIPE_STAGES + 2 <= FIFO_DEPTH);
  end
endmodule
