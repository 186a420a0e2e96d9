#include "host/common/status.h"

#include <cstdio>
#include <cstdlib>

namespace tally {

void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "TALLY_ASSERT failed: %s at %s:%d%s%s\n", expr, file, line,
               msg ? ": " : "", msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}

const char* code_name(Code c) {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kOutOfRange: return "OutOfRange";
    case Code::kResourceExhausted: return "ResourceExhausted";
    case Code::kUnavailable: return "Unavailable";
    case Code::kIoError: return "IoError";
    case Code::kCorruption: return "Corruption";
    case Code::kInternal: return "Internal";
    case Code::kUnimplemented: return "Unimplemented";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  return std::string(code_name(code_)) + ": " + message_;
}

}  // namespace tally
