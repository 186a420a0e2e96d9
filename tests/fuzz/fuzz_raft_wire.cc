// libFuzzer harness for the Raft wire form (host/replication/raft/wire.h): whatever a peer sends,
// decode_messages either refuses it or returns messages that encode back to exactly those bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "host/replication/raft/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto msgs = tally::raft::decode_messages(in);
  if (!msgs.is_ok()) return 0;
  std::string again;
  tally::raft::encode_messages(*msgs, again);
  if (again != in) std::abort();  // a batch that decodes must be the encoding of what it decoded to
  return 0;
}
