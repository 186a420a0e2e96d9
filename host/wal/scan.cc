// Reading a log: segment headers, records, their checksums, and the search for valid records past a
// header that cannot be trusted (which tells a torn tail from corruption).
#include "host/wal/scan.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "host/wal/recovery.h"
#include "host/wal/seal.h"

namespace tally::wal {

namespace {

inline constexpr size_t kSegmentNameDigits = 20;
inline constexpr std::string_view kSegmentSuffix = ".wal";
inline constexpr uint64_t kZeroChunkBytes = uint64_t{1} << 20;

bool all_zero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

// A little-endian word, as the format stores them.
uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

// Where the last non-zero byte ends, rounded up to 8.
uint64_t data_end(const std::string& data) {
  uint64_t end = data.size();
  while (end >= 8 && load64(data.data() + end - 8) == 0) end -= 8;
  while (end > 0 && data[end - 1] == 0) --end;
  return std::min<uint64_t>((end + 7) & ~uint64_t{7}, data.size());
}

// A record that passes every check at `p`: both checksums and, for a hard state, its vote.
const char* record_problem(const char* p, uint64_t seq, uint64_t bytes_left, RecordFrame& f, bool& header_ok) {
  f = decode_record_frame(p);
  header_ok = false;
  if (const char* problem = record_header_problem(f, p, seq, bytes_left)) return problem;
  header_ok = true;
  if (crc32c_any(p + kRecordHeaderBytes, f.payload_bytes) != f.payload_crc) return "payload checksum";
  if (f.type == static_cast<uint8_t>(RecordType::kHardState) && f.payload_bytes != kVoteBytes) {
    return "hard state payload";
  }
  return nullptr;
}

class SegmentReader {
 public:
  SegmentReader(const ScanSegment& seg, const std::string& data, const ScanFn& fn, ScanResult& out)
      : seg_(seg), data_(data), fn_(fn), out_(out) {}

  void read() {
    const uint64_t n = data_.size();
    const char* d = data_.data();
    if (n < kSegmentHeaderBytes) {
      if (!all_zero(d, n)) bad(0, false, 0, "segment header: short file");
      return;
    }
    if (all_zero(d, kSegmentHeaderBytes)) {
      // Unused: a preparation that did not finish, or a segment a repair zeroed; unless something
      // valid follows, in which case the header was lost.
      if (all_zero(d + kSegmentHeaderBytes, std::min<uint64_t>(n - kSegmentHeaderBytes, kRecordHeaderBytes))) {
        if (search(kSegmentHeaderBytes)) bad(0, false, 0, "zeroed segment header");
        return;
      }
      bad(0, false, 0, "zeroed segment header");
    } else if (auto h = decode_segment_header(std::string_view(d, kSegmentHeaderBytes)); !h.is_ok()) {
      bad(0, false, 0, h.status().message());
    } else if (h->seq != seg_.seq) {
      bad(0, false, 0, "segment header: sequence number differs from the file name");
    }
    // Records sit at fixed places from offset 64 on, so they are read even past a bad segment header.
    uint64_t off = kSegmentHeaderBytes;
    while (off < n) {
      const char* p = d + off;
      if (n - off < kRecordHeaderBytes) {
        if (!all_zero(p, n - off)) bad(off, false, 0, "header past end of file");
        return;
      }
      if (all_zero(p, kRecordHeaderBytes)) {
        if (search(off + kRecordAlignBytes)) bad(off, false, 0, "zeroed record header");
        return;
      }
      RecordFrame f;
      bool header_ok = false;
      if (const char* problem = record_problem(p, seg_.seq, n - off, f, header_ok)) {
        if (!header_ok) {
          bad(off, false, 0, problem);
          search(off + kRecordAlignBytes);
          return;
        }
        bad(off, true, f.group, problem);
      } else {
        valid(off, f.group);
        fn_(LogPos{seg_.seq, off}, f, std::string_view(p + kRecordHeaderBytes, f.payload_bytes));
      }
      off += record_bytes(f.payload_bytes);
    }
  }

 private:
  void bad(uint64_t off, bool known, uint32_t group, std::string what) {
    out_.bad.push_back(ScanBad{LogPos{seg_.seq, off}, seg_.path, known, group, std::move(what)});
  }

  void valid(uint64_t off, uint32_t group) {
    const LogPos pos{seg_.seq, off};
    out_.group_last[group] = pos;
    out_.any_valid = true;
    out_.last_valid = pos;
  }

  // Looks for valid records from `off` to the end of the segment at every aligned offset; records
  // them as hits. A cheap filter first: the segment number field must match.
  bool search(uint64_t off) {
    const uint64_t n = data_.size();
    bool found = false;
    while (off + kRecordHeaderBytes <= n) {
      const char* p = data_.data() + off;
      RecordFrame f;
      bool header_ok = false;
      if (load64(p + 40) == seg_.seq && record_problem(p, seg_.seq, n - off, f, header_ok) == nullptr) {
        out_.hits.emplace_back(LogPos{seg_.seq, off}, f.group);
        valid(off, f.group);
        found = true;
        off += record_bytes(f.payload_bytes);
      } else {
        off += kRecordAlignBytes;
      }
    }
    return found;
  }

  const ScanSegment& seg_;
  const std::string& data_;
  const ScanFn& fn_;
  ScanResult& out_;
};

}  // namespace

Result<std::vector<uint64_t>> list_segments(Env& env, const std::string& dir) {
  std::vector<uint64_t> seqs;
  if (!env.exists(dir)) return seqs;
  auto names = env.list_dir(dir);
  if (!names.is_ok()) return names.status();
  for (const std::string& name : *names) {
    if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) continue;
    uint64_t seq = 0;
    bool ok = true;
    for (size_t i = 0; i < kSegmentNameDigits && ok; ++i) {
      const char c = name[i];
      ok = c >= '0' && c <= '9' && seq <= (UINT64_MAX - static_cast<uint64_t>(c - '0')) / 10;
      if (ok) seq = seq * 10 + static_cast<uint64_t>(c - '0');
    }
    if (ok && seq != 0) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

Status scan_log(Env& env, const std::string& dir, const ScanFn& fn, ScanResult& out) {
  auto seqs = list_segments(env, dir);
  if (!seqs.is_ok()) return seqs.status();
  std::string data;
  for (uint64_t seq : *seqs) {
    ScanSegment seg;
    seg.seq = seq;
    seg.path = segment_path(dir, seq);
    auto read = env.read_file(seg.path);
    if (!read.is_ok()) return read.status();
    data = std::move(*read);
    seg.size = data.size();
    seg.data_end = data_end(data);
    out.segments.push_back(seg);
    SegmentReader(out.segments.back(), data, fn, out).read();
  }
  return Status::ok();
}

Status zero_range(Env& env, const std::string& path, uint64_t from, uint64_t to) {
  if (from >= to) return Status::ok();
  auto file = env.open_file(path, OpenMode::kReadWrite);
  if (!file.is_ok()) return file.status();
  const std::string zeros(std::min<uint64_t>(to - from, kZeroChunkBytes), '\0');
  for (uint64_t off = from; off < to; off += zeros.size()) {
    TALLY_RETURN_IF_ERROR((*file)->write_at(off, std::string_view(zeros.data(), std::min<uint64_t>(zeros.size(), to - off))));
  }
  return (*file)->sync();
}

}  // namespace tally::wal
