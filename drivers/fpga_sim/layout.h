// Buffer layout and register map shared by the fpga_sim and xrt drivers: the records the card's DMA
// shell reads and writes, and the packing of offload batches into them (hw/README.md documents both).
#pragma once

#include <cstdint>
#include <span>

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::drivers::fpga {

// ---- Beat geometry of the RTL stream ports.
inline constexpr uint32_t kCrcBeatBytes = 32;   // crc32c_stream: bytes per cycle
inline constexpr uint32_t kTallySlots = 8;      // tally_quorum: replica slots per group
inline constexpr uint32_t kNoSourceHw = 0xffffffffu;

// ---- Register map of each kernel's AXI4-Lite control slave (Vitis ap_ctrl_hs convention).
namespace reg {
inline constexpr uint32_t kControl = 0x00;      // bit 0 ap_start, 1 ap_done, 2 ap_idle, 3 ap_ready
inline constexpr uint32_t kGlobalIrq = 0x04;
inline constexpr uint32_t kIrqEnable = 0x08;
inline constexpr uint32_t kIrqStatus = 0x0c;
inline constexpr uint32_t kArgIn0 = 0x10;       // 64-bit address: descriptors or records
inline constexpr uint32_t kArgIn1 = 0x1c;       // 64-bit address: checksum blob (unused elsewhere)
inline constexpr uint32_t kArgOut = 0x28;       // 64-bit address: results
inline constexpr uint32_t kArgCount = 0x34;     // 32-bit: descriptors or records
inline constexpr uint32_t kCycles = 0x3c;       // 64-bit, read-only: cycles of the last run
}  // namespace reg

// Kernel names in the xclbin, one per RTL top.
inline constexpr const char* kCrcKernelName = "tally_crc32c";
inline constexpr const char* kTallyKernelName = "tally_quorum";
inline constexpr const char* kLwwKernelName = "tally_resolve_lww";

// ---- checksum: one descriptor per item; the shell streams blob[offset, offset + bytes) as beats.
struct ChecksumDescriptor {
  uint64_t offset = 0;
  uint32_t bytes = 0;
  uint32_t reserved = 0;
};
static_assert(sizeof(ChecksumDescriptor) == 16);
// Results: one uint32_t CRC32C per descriptor.

// ---- tally: one 128-byte record per commit group or quorum read, one uint64_t result each.
// Slot r's 96-bit key is {key_high[r], key_low[r]}: commit {0, match}; read {hlc, node}.
struct TallyRecord {
  uint64_t key_low[kTallySlots] = {};
  uint32_t key_high[kTallySlots] = {};
  uint8_t mask = 0;       // voters, or replicas that replied
  uint8_t read_mode = 0;  // 0 commit, 1 read
  uint8_t reserved[30] = {};
};
static_assert(sizeof(TallyRecord) == 128);

// ---- resolve LWW: records grouped by key (keys ascending, items of a key in index order), one
// 16-byte result per key. A key without incoming versions gets one record flagged empty.
inline constexpr uint32_t kLwwFirst = 1u << 0;
inline constexpr uint32_t kLwwLast = 1u << 1;
inline constexpr uint32_t kLwwEmpty = 1u << 2;
struct LwwRecord {
  uint64_t current_hlc = 0;
  uint64_t hlc = 0;
  uint32_t current_node = 0;
  uint32_t node = 0;
  uint32_t index = 0;
  uint32_t flags = 0;
};
static_assert(sizeof(LwwRecord) == 32);
struct LwwResult {
  uint64_t hlc = 0;
  uint32_t node = 0;
  uint32_t source = kNoSourceHw;
};
static_assert(sizeof(LwwResult) == 16);

// ---- Packing. Every function checks the output span's size and returns kInvalidArgument when
// it is too small; batches must have passed kernels::validate.
Status pack_checksum(const kernels::ChecksumBatch& b, std::span<ChecksumDescriptor> out);

inline uint64_t tally_records(const kernels::TallyBatch& b) { return uint64_t{b.groups} + b.reads; }
Status pack_tally(const kernels::TallyBatch& b, std::span<TallyRecord> out);
Status unpack_tally(std::span<const uint64_t> results, const kernels::TallyBatch& b);

// Records the LWW stream needs: one per item plus one per key nobody wrote (at most items + keys).
inline uint64_t lww_records_max(const kernels::LwwBatch& b) { return uint64_t{b.items} + b.keys; }
// key_starts is scratch of keys + 1 entries (a counting sort by key). Writes *records.
Status pack_lww(const kernels::LwwBatch& b, std::span<uint32_t> key_starts, std::span<LwwRecord> out,
                uint64_t* records);
Status unpack_lww(std::span<const LwwResult> results, const kernels::LwwBatch& b);

}  // namespace tally::drivers::fpga
