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
}  // namespace

CpuDevice::CpuDevice(CpuDeviceOptions options) : options_(options) {
  TALLY_ASSERT(options_.threads <= kCpuThreadsMax);
  TALLY_ASSERT(options_.in_flight_max >= 1 && options_.chunks_per_batch_max >= 1 && options_.bulk_items_min >= 1);
  caps_.backend = Backend::kCpu;
  caps_.name = "cpu x" + std::to_string(std::max<uint32_t>(options_.threads, 1)) + " threads";
  caps_.in_flight_max = options_.in_flight_max;
  for (auto& limits : caps_.ops) limits = OpLimits{true, kernels::kBatchItemsMax, kernels::kBatchBlobBytesMax};
  jobs_.resize(options_.in_flight_max);
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
    const uint64_t start_ns = now_ns();
    if (fused) {
      TALLY_RETURN_IF_ERROR(kernels::checksum_cpu_checked(batch.checksum));
    } else {
      kernels::run_reference_validated(batch);
    }
    ++in_flight_;
    completions_.push_back(Completion{tag, Status::ok(), now_ns() - start_ns});
    TALLY_ASSERT(completions_.size() == in_flight_);
    return Status::ok();
  }
  std::unique_lock lock(mu_);
  if (in_flight_ >= options_.in_flight_max) return Status::exhausted("cpu: in-flight batches at maximum");
  TALLY_ASSERT(completions_.size() <= options_.in_flight_max);
  if (inline_run) {
    ++in_flight_;
    lock.unlock();
    const uint64_t start_ns = now_ns();
    if (fused) {
      Status st = kernels::checksum_cpu_checked(batch.checksum);
      if (!st.is_ok()) {
        lock.lock();
        --in_flight_;
        return st;
      }
    } else {
      kernels::run_reference_validated(batch);
    }
    const uint64_t elapsed_ns = now_ns() - start_ns;
    lock.lock();
    completions_.push_back(Completion{tag, Status::ok(), elapsed_ns});
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
      completions_.push_back(Completion{job.tag, Status::ok(), now_ns() - job.start_ns});
      job.used = false;
      done_cv_.notify_all();
    }
  }
}

size_t CpuDevice::poll(std::span<Completion> out, uint64_t wait_ns) {
  if (threads_.empty()) {
    // Inline batches complete inside submit: there is never anything to wait for.
    size_t n = 0;
    while (n < out.size() && !completions_.empty()) {
      out[n++] = std::move(completions_.front());
      completions_.pop_front();
      --in_flight_;
    }
    TALLY_ASSERT(completions_.size() == in_flight_);
    return n;
  }
  std::unique_lock lock(mu_);
  if (completions_.empty() && wait_ns > 0) {
    done_cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [this] { return !completions_.empty(); });
  }
  size_t n = 0;
  while (n < out.size() && !completions_.empty()) {
    out[n++] = std::move(completions_.front());
    completions_.pop_front();
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
