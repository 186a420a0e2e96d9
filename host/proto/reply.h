// ReplyWriter: encodes RESP2 or RESP3 replies into an output buffer.
// RESP3-only types degrade to their RESP2 forms when the client speaks RESP2.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tally::proto {

class ReplyWriter {
 public:
  explicit ReplyWriter(std::string& out, int resp = 2) : out_(&out), resp_(resp) {}

  int resp() const { return resp_; }
  void set_resp(int resp) { resp_ = resp; }
  std::string& buffer() { return *out_; }
  void set_buffer(std::string& out) { out_ = &out; }

  void simple(std::string_view s);          // +OK
  void ok() { out_->append("+OK\r\n", 5); }
  void error(std::string_view msg);          // -ERR ... (msg carries its own prefix, e.g. "ERR x")
  void integer(int64_t v);                   // :N
  void bulk(std::string_view s);             // $N\r\n...
  void null();                               // RESP2 $-1, RESP3 _
  void null_array();                         // RESP2 *-1, RESP3 _
  void array(size_t n);                      // *N
  void map(size_t n);                        // RESP3 %N, RESP2 *2N
  void set(size_t n);                        // RESP3 ~N, RESP2 *N
  void push(size_t n);                       // RESP3 >N, RESP2 *N
  void dbl(double v);                        // RESP3 ,v, RESP2 bulk string
  void boolean(bool v);                      // RESP3 #t/#f, RESP2 :1/:0
  void verbatim(std::string_view s);         // RESP3 =N\r\ntxt:..., RESP2 bulk
  void raw(std::string_view bytes) { out_->append(bytes); }

 private:
  void header(char type, int64_t n);
  std::string* out_;
  int resp_;
};

// Formats a double the way Redis replies with it (shortest round-trip form, inf/-inf/nan).
std::string format_double(double v);

}  // namespace tally::proto
