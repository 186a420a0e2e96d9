// xrt: buffer objects allocated once per kernel argument; each batch is packed on the host, synced to
// the card, run, synced back and unpacked. Kernel arguments follow hw/README.md's register map.
#include "drivers/xrt/xrt_device.h"

#include <algorithm>
#include <cstring>

#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>

#include "kernels/cpu/reference.h"

namespace tally::drivers {

using kernels::Op;

namespace {
// Argument order of every kernel: records or descriptors, blob, results, count.
constexpr int kArgRecords = 0;
constexpr int kArgBlob = 1;
constexpr int kArgResults = 2;
// Tally and LWW ignore the blob argument; they get this small placeholder.
constexpr size_t kPlaceholderBytes = 4096;
}  // namespace

struct XrtDevice::Card {
  xrt::device device;
  xrt::uuid uuid;
  xrt::kernel crc, tally, lww;
  xrt::bo crc_desc, crc_blob, crc_out;
  xrt::bo tally_in, tally_out, tally_blob;
  xrt::bo lww_in, lww_out, lww_blob;
  xrt::run run;
};

Result<std::unique_ptr<XrtDevice>> XrtDevice::open(const XrtOptions& options) {
  TALLY_ASSERT(options.items_max > 0 && options.items_max <= kernels::kBatchItemsMax);
  TALLY_ASSERT(options.run_timeout_ms > 0);
  if (options.xclbin_path.empty()) return Status::unavailable("xrt: no xclbin configured");
  // XRT reports a missing card or a bad xclbin by throwing; this is the one place that catches, and
  // it turns them into the normal "device absent" status.
  try {
    auto card = std::make_unique<Card>();
    card->device = xrt::device(options.device_index);
    card->uuid = card->device.load_xclbin(options.xclbin_path);
    card->crc = xrt::kernel(card->device, card->uuid, fpga::kCrcKernelName);
    card->tally = xrt::kernel(card->device, card->uuid, fpga::kTallyKernelName);
    card->lww = xrt::kernel(card->device, card->uuid, fpga::kLwwKernelName);
    const size_t n = options.items_max;
    auto bo = [&](xrt::kernel& k, int arg, size_t bytes) { return xrt::bo(card->device, bytes, k.group_id(arg)); };
    card->crc_desc = bo(card->crc, kArgRecords, n * sizeof(fpga::ChecksumDescriptor));
    card->crc_blob = bo(card->crc, kArgBlob, std::max<size_t>(options.blob_bytes_max, kPlaceholderBytes));
    card->crc_out = bo(card->crc, kArgResults, n * sizeof(uint32_t));
    card->tally_in = bo(card->tally, kArgRecords, n * sizeof(fpga::TallyRecord));
    card->tally_blob = bo(card->tally, kArgBlob, kPlaceholderBytes);
    card->tally_out = bo(card->tally, kArgResults, n * sizeof(uint64_t));
    card->lww_in = bo(card->lww, kArgRecords, 2 * n * sizeof(fpga::LwwRecord));
    card->lww_blob = bo(card->lww, kArgBlob, kPlaceholderBytes);
    card->lww_out = bo(card->lww, kArgResults, n * sizeof(fpga::LwwResult));
    return std::unique_ptr<XrtDevice>(new XrtDevice(options, std::move(card)));
  } catch (const std::exception& e) {
    return Status::unavailable(std::string("xrt: ") + e.what());
  }
}

XrtDevice::XrtDevice(const XrtOptions& options, std::unique_ptr<Card> card)
    : options_(options), card_(std::move(card)) {
  TALLY_ASSERT(card_ != nullptr);
  caps_.backend = Backend::kXrt;
  caps_.name = "xrt card " + std::to_string(options_.device_index);
  caps_.in_flight_max = 1;
  caps_.ops[static_cast<size_t>(Op::kChecksum)] = OpLimits{true, options_.items_max, options_.blob_bytes_max};
  caps_.ops[static_cast<size_t>(Op::kTally)] = OpLimits{true, options_.items_max, 0};
  caps_.ops[static_cast<size_t>(Op::kResolve)] = OpLimits{true, options_.items_max, 0};  // LWW only
  const size_t n = options_.items_max;
  descriptors_.resize(n);
  crc_results_.resize(n);
  tally_records_.resize(n);
  tally_results_.resize(n);
  lww_records_.resize(2 * n);
  lww_results_.resize(n);
  key_starts_.resize(n + 1);
}

XrtDevice::~XrtDevice() {
  if (pending_) {
    try {
      card_->run.wait(std::chrono::milliseconds(options_.run_timeout_ms));
    } catch (const std::exception&) {
      // Nothing more to do while closing: the card is released with card_.
    }
  }
}

Status XrtDevice::submit(const Batch& batch, uint64_t tag) {
  if (!healthy_) return Status::unavailable("xrt: device failed earlier");
  if (pending_) return Status::exhausted("xrt: one batch in flight; poll first");
  const OpLimits& lim = caps_.limits(batch.op);
  if (!lim.supported) return Status::invalid(std::string("xrt: op not supported: ") + kernels::op_name(batch.op));
  if (batch.op == Op::kResolve && batch.resolve.kind != kernels::ResolveKind::kLww) return Status::invalid("xrt resolve: LWW only");
  if (batch.items() > lim.items_max) return Status::invalid("xrt: batch over items_max");
  if (batch.op == Op::kResolve && batch.resolve.lww.keys > lim.items_max) return Status::invalid("xrt: too many keys");
  if (batch.op == Op::kChecksum && batch.checksum.blob_bytes > lim.blob_bytes_max) return Status::invalid("xrt: blob too large");
  TALLY_RETURN_IF_ERROR(kernels::validate(batch));

  try {
    Card& c = *card_;
    switch (batch.op) {
      case Op::kChecksum: {
        const auto& b = batch.checksum;
        TALLY_RETURN_IF_ERROR(fpga::pack_checksum(b, descriptors_));
        records_ = b.items;
        c.crc_desc.write(descriptors_.data(), records_ * sizeof(fpga::ChecksumDescriptor), 0);
        c.crc_desc.sync(XCL_BO_SYNC_BO_TO_DEVICE, records_ * sizeof(fpga::ChecksumDescriptor), 0);
        if (b.blob_bytes > 0) {
          c.crc_blob.write(b.blob, b.blob_bytes, 0);
          c.crc_blob.sync(XCL_BO_SYNC_BO_TO_DEVICE, b.blob_bytes, 0);
        }
        c.run = c.crc(c.crc_desc, c.crc_blob, c.crc_out, static_cast<uint32_t>(records_));
        break;
      }
      case Op::kTally: {
        TALLY_RETURN_IF_ERROR(fpga::pack_tally(batch.tally, tally_records_));
        records_ = fpga::tally_records(batch.tally);
        c.tally_in.write(tally_records_.data(), records_ * sizeof(fpga::TallyRecord), 0);
        c.tally_in.sync(XCL_BO_SYNC_BO_TO_DEVICE, records_ * sizeof(fpga::TallyRecord), 0);
        c.run = c.tally(c.tally_in, c.tally_blob, c.tally_out, static_cast<uint32_t>(records_));
        break;
      }
      case Op::kResolve: {
        TALLY_RETURN_IF_ERROR(fpga::pack_lww(batch.resolve.lww, key_starts_, lww_records_, &records_));
        c.lww_in.write(lww_records_.data(), records_ * sizeof(fpga::LwwRecord), 0);
        c.lww_in.sync(XCL_BO_SYNC_BO_TO_DEVICE, records_ * sizeof(fpga::LwwRecord), 0);
        c.run = c.lww(c.lww_in, c.lww_blob, c.lww_out, static_cast<uint32_t>(records_));
        break;
      }
      default:
        TALLY_UNREACHABLE();
    }
  } catch (const std::exception& e) {
    healthy_ = false;
    return Status::unavailable(std::string("xrt: ") + e.what());
  }
  batch_ = batch;
  tag_ = tag;
  started_ = std::chrono::steady_clock::now();
  pending_ = true;
  return Status::ok();
}

size_t XrtDevice::poll(std::span<Completion> out, uint64_t wait_ns) {
  if (!pending_ || out.empty()) return 0;
  const auto wait_ms = std::chrono::milliseconds(std::max<uint64_t>(1, wait_ns / 1'000'000));
  ert_cmd_state state;
  try {
    state = card_->run.wait(wait_ms);
  } catch (const std::exception&) {
    state = ERT_CMD_STATE_ERROR;
  }
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  const bool timed_out = elapsed > std::chrono::milliseconds(options_.run_timeout_ms);
  if (state != ERT_CMD_STATE_COMPLETED && state != ERT_CMD_STATE_ERROR && !timed_out) return 0;

  Completion& done = out[0];
  done.tag = tag_;
  done.device_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
  if (state == ERT_CMD_STATE_COMPLETED) {
    done.status = finish(&done);
  } else {
    // A failed or hung run fails the device: the scheduler reruns the batch on the CPU.
    healthy_ = false;
    done.status = Status::unavailable(timed_out ? "xrt: kernel run timed out" : "xrt: kernel run failed");
  }
  pending_ = false;
  return 1;
}

Status XrtDevice::finish(Completion* done) {
  TALLY_ASSERT(pending_ && done != nullptr);
  try {
    Card& c = *card_;
    switch (batch_.op) {
      case Op::kChecksum:
        c.crc_out.sync(XCL_BO_SYNC_BO_FROM_DEVICE, records_ * sizeof(uint32_t), 0);
        c.crc_out.read(crc_results_.data(), records_ * sizeof(uint32_t), 0);
        std::memcpy(batch_.checksum.crc_out, crc_results_.data(), records_ * sizeof(uint32_t));
        return Status::ok();
      case Op::kTally:
        c.tally_out.sync(XCL_BO_SYNC_BO_FROM_DEVICE, records_ * sizeof(uint64_t), 0);
        c.tally_out.read(tally_results_.data(), records_ * sizeof(uint64_t), 0);
        return fpga::unpack_tally(std::span<const uint64_t>(tally_results_.data(), records_), batch_.tally);
      case Op::kResolve: {
        const uint32_t keys = batch_.resolve.lww.keys;
        c.lww_out.sync(XCL_BO_SYNC_BO_FROM_DEVICE, keys * sizeof(fpga::LwwResult), 0);
        c.lww_out.read(lww_results_.data(), keys * sizeof(fpga::LwwResult), 0);
        return fpga::unpack_lww(std::span<const fpga::LwwResult>(lww_results_.data(), keys), batch_.resolve.lww);
      }
      default:
        TALLY_UNREACHABLE();
    }
  } catch (const std::exception& e) {
    healthy_ = false;
    return Status::unavailable(std::string("xrt: ") + e.what());
  }
}

}  // namespace tally::drivers
