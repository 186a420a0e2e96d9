// CpuDevice: inline execution for small batches, a bounded task queue and thread pool for bulk ones.
#include "drivers/cpu/cpu_device.h"

#include <algorithm>
#include <chrono>

#include "kernels/cpu/reference.h"

namespace tally::drivers {

namespace {
uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

// Ops whose items are independent can be split into item ranges; the others run as one task.
bool splittable(const Batch& b) { return b.op == Op::kChecksum || b.op == Op::kPartition; }

// An inline batch is timed only when its work dwarfs the two clock reads timing costs (about 30 ns
// each on a virtual machine, as much as the CRC of a 64-byte item): at least several microseconds,
// so the reads stay under 1%. Smaller batches report device_ns = 0.
constexpr uint32_t kTimedItemsMin = 4096;
constexpr uint64_t kTimedBlobBytesMin = 64 * 1024;
bool worth_timing(const Batch& b) {
  if (b.op == Op::kMerkle || b.items() >= kTimedItemsMin) return true;
  if (b.op == Op::kChecksum) return b.checksum.blob_bytes >= kTimedBlobBytesMin;
  if (b.op == Op::kPartition) return b.partition.blob_bytes >= kTimedBlobBytesMin;
  return false;
}

// Runs a batch on the caller's thread (fused checksums validate inside the compute loop) and sets
// *device_ns to its time when it is worth timing, else to 0.
Status run_here(const Batch& batch, bool fused, uint64_t* device_ns) {
  const bool timed = worth_timing(batch);
  const uint64_t start_ns = timed ? now_ns() : 0;
  Status st = Status::ok();
  if (fused) {
    st = kernels::checksum_cpu_checked(batch.checksum);
  } else {
    kernels::run_reference_validated(batch);
  }
  *device_ns = timed ? now_ns() - start_ns : 0;
  return st;
}
}  // namespace

CpuDevice::CpuDevice(CpuDeviceOptions options) : options_(options) {
  TALLY_ASSERT(options_.threads <= kCpuThreadsMax);
  TALLY_ASSERT(options_.in_flight_max >= 1 && options_.chunks_per_batch_max >= 1 && options_.bulk_items_min >= 1);
  caps_.backend = Backend::kCpu;
  caps_.name = "cpu x" + std::to_string(std::max<uint32_t>(options_.threads, 1)) + " threads";
  caps_.in_flight_max = options_.in_flight_max;
  for (auto& limits : caps_.ops) limits = OpLimits{true, kernels::kBatchItemsMax, kernels::kBatchBlobBytesMax};
  jobs_.resize(options_.in_flight_max);
  ring_.resize(options_.in_flight_max);
  threads_.reserve(options_.threads);
  for (uint32_t t = 0; t < options_.threads; ++t) threads_.emplace_back([this] { worker_loop(); });
}

CpuDevice::~CpuDevice() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

Status CpuDevice::submit(const Batch& batch, uint64_t tag) {
  const uint32_t items = batch.items();
  const bool inline_run = threads_.empty() || items < options_.bulk_items_min;
  // Inline checksums validate inside the compute loop; everything else is validated here, once.
  const bool fused = inline_run && batch.op == Op::kChecksum;
  if (!fused) TALLY_RETURN_IF_ERROR(kernels::validate(batch));
  if (threads_.empty()) {
    // No pool: only the caller's thread touches this device (the Device contract), so no locks.
    if (in_flight_ >= options_.in_flight_max) return Status::exhausted("cpu: in-flight batches at maximum");
    uint64_t device_ns = 0;
    TALLY_RETURN_IF_ERROR(run_here(batch, fused, &device_ns));
    ++in_flight_;
    push_completion(Completion{tag, Status::ok(), device_ns});
    TALLY_ASSERT(ring_count_ == in_flight_);
    return Status::ok();
  }
  std::unique_lock lock(mu_);
  if (in_flight_ >= options_.in_flight_max) return Status::exhausted("cpu: in-flight batches at maximum");
  TALLY_ASSERT(ring_count_ <= options_.in_flight_max);
  if (inline_run) {
    ++in_flight_;
    lock.unlock();
    uint64_t elapsed_ns = 0;
    Status st = run_here(batch, fused, &elapsed_ns);
    lock.lock();
    if (!st.is_ok()) {
      --in_flight_;
      return st;
    }
    push_completion(Completion{tag, Status::ok(), elapsed_ns});
    done_cv_.notify_all();
    return Status::ok();
  }
  uint32_t slot = 0;
  while (jobs_[slot].used) ++slot;  // a free slot exists: in_flight_ < in_flight_max
  TALLY_ASSERT(slot < jobs_.size());
  Job& job = jobs_[slot];
  const uint32_t chunks = splittable(batch)
                              ? std::min<uint32_t>(options_.chunks_per_batch_max,
                                                   std::max<uint32_t>(1, items / std::max<uint32_t>(1, options_.bulk_items_min / 4)))
                              : 1;
  job = Job{batch, tag, now_ns(), chunks, true};
  ++in_flight_;
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint32_t first = static_cast<uint32_t>(uint64_t{items} * c / chunks);
    const uint32_t last = static_cast<uint32_t>(uint64_t{items} * (c + 1) / chunks);
    tasks_.push_back(Task{slot, first, last});
  }
  TALLY_ASSERT(tasks_.size() <= uint64_t{options_.in_flight_max} * options_.chunks_per_batch_max);
  work_cv_.notify_all();
  return Status::ok();
}

void CpuDevice::run_task(const Task& task) {
  const Batch& b = jobs_[task.job].batch;
  switch (b.op) {
    case Op::kChecksum: kernels::checksum_cpu(b.checksum, task.first, task.last); return;
    case Op::kPartition: kernels::partition_cpu(b.partition, task.first, task.last); return;
    default: kernels::run_reference_validated(b); return;  // validated in submit
  }
}

void CpuDevice::worker_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping and drained
    const Task task = tasks_.front();
    tasks_.pop_front();
    lock.unlock();
    run_task(task);
    lock.lock();
    Job& job = jobs_[task.job];
    TALLY_ASSERT(job.used && job.chunks_left > 0);
    if (--job.chunks_left == 0) {
      push_completion(Completion{job.tag, Status::ok(), now_ns() - job.start_ns});
      job.used = false;
      done_cv_.notify_all();
    }
  }
}

void CpuDevice::push_completion(Completion done) {
  TALLY_ASSERT(ring_count_ < ring_.size());
  // Wrapped by a compare, not %: a division costs more than the rest of a small batch's bookkeeping.
  uint32_t at = ring_head_ + ring_count_;
  if (at >= ring_.size()) at -= static_cast<uint32_t>(ring_.size());
  ring_[at] = std::move(done);
  ++ring_count_;
}

void CpuDevice::pop_completion(Completion* out) {
  TALLY_ASSERT(ring_count_ > 0);
  *out = std::move(ring_[ring_head_]);
  ring_head_ = ring_head_ + 1 == ring_.size() ? 0 : ring_head_ + 1;
  --ring_count_;
}

bool CpuDevice::run_inline(const Batch& batch, Completion* done) {
  // Inline work touches no shared state, so it needs no lock even with a pool running.
  if (!threads_.empty() && batch.items() >= options_.bulk_items_min) return false;
  if (batch.op != Op::kChecksum) {
    Status st = kernels::validate(batch);
    if (!st.is_ok()) {
      *done = Completion{0, std::move(st), 0};
      return true;
    }
  }
  done->tag = 0;
  done->status = run_here(batch, batch.op == Op::kChecksum, &done->device_ns);
  return true;
}

size_t CpuDevice::poll(std::span<Completion> out, uint64_t wait_ns) {
  if (threads_.empty()) {
    // Inline batches complete inside submit: there is never anything to wait for.
    size_t n = 0;
    while (n < out.size() && ring_count_ > 0) {
      pop_completion(&out[n++]);
      --in_flight_;
    }
    TALLY_ASSERT(ring_count_ == in_flight_);
    return n;
  }
  std::unique_lock lock(mu_);
  if (ring_count_ == 0 && wait_ns > 0) {
    done_cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [this] { return ring_count_ > 0; });
  }
  size_t n = 0;
  while (n < out.size() && ring_count_ > 0) {
    pop_completion(&out[n++]);
    TALLY_ASSERT(in_flight_ > 0);
    --in_flight_;
  }
  return n;
}

uint32_t CpuDevice::in_flight() const {
  if (threads_.empty()) return in_flight_;
  std::lock_guard lock(mu_);
  return in_flight_;
}

}  // namespace tally::drivers
