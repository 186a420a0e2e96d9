// A parsed request: argument views into the connection's input buffer.
// Views stay valid until the connection consumes the bytes the parser reported.
#pragma once

#include <string_view>
#include <vector>

namespace tally::proto {

struct Command {
  std::vector<std::string_view> argv;
  bool inline_form = false;  // came as a space-separated inline command

  void clear() {
    argv.clear();
    inline_form = false;
  }
};

}  // namespace tally::proto
