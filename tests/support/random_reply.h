// Random reply values for tests: every node type, nested containers (arrays shown flat in RESP2, maps
// shown as pairs), strings of any bytes.
#pragma once

#include <string>

#include "host/common/rng.h"
#include "host/proto/reply_value.h"

namespace tally::test {

using proto::Reply;

inline void random_reply_value(Rng& rng, Reply& r, int depth = 0) {
  const uint64_t kind = rng.uniform(depth > 3 ? 9 : 13);
  std::string s(rng.uniform(40), 'x');
  for (char& c : s) c = static_cast<char>(rng.uniform(256));
  switch (kind) {
    case 0: r.simple("OK"); return;
    case 1: r.error("ERR " + std::to_string(rng.uniform(1000))); return;
    case 2: r.integer(static_cast<int64_t>(rng.next())); return;
    case 3: r.bulk(s); return;
    case 4: r.null(); return;
    case 5: r.null_array(); return;
    case 6: r.dbl(static_cast<double>(rng.uniform(1u << 20)) / 7.0); return;
    case 7: r.boolean(rng.uniform(2) == 1); return;
    case 8: r.verbatim(s); return;
    default: break;
  }
  const size_t n = rng.uniform(5);
  switch (kind) {
    case 9:
      if (rng.uniform(2) == 0) {
        r.array(n);
      } else {
        r.array_flat_in_resp2(n);
        for (size_t i = 0; i < n; ++i) {
          r.array(2);
          random_reply_value(rng, r, depth + 1);
          random_reply_value(rng, r, depth + 1);
        }
        return;
      }
      break;
    case 10:
      if (rng.uniform(2) == 0) {
        r.map(n);
      } else {
        r.map_pairs_in_resp2(n);
      }
      for (size_t i = 0; i < 2 * n; ++i) random_reply_value(rng, r, depth + 1);
      return;
    case 11: r.set(n); break;
    default: r.push(n); break;
  }
  for (size_t i = 0; i < n; ++i) random_reply_value(rng, r, depth + 1);
}

}  // namespace tally::test
