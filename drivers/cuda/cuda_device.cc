// CudaDevice: pinned staging, two stream slots, kernel and Thrust launches, error = device failed.
#include "drivers/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "drivers/cuda/layout.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels.h"
#include "kernels/thrust/thrust_ops.h"

namespace tally::drivers {

namespace {
constexpr uint64_t kAlignBytes = 256;
constexpr uint64_t kPollSleepNs = 20'000;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}
uint64_t align_up(uint64_t x) { return (x + kAlignBytes - 1) / kAlignBytes * kAlignBytes; }

Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return Status::unavailable(std::string("cuda: ") + what + ": " + cudaGetErrorString(err));
}
}  // namespace

struct CudaDevice::Impl {
  struct Slot {
    uint8_t* pinned = nullptr;
    uint8_t* device = nullptr;
    uint8_t* scratch = nullptr;
    cudaStream_t stream = nullptr;
    cudaEvent_t done = nullptr;
    bool busy = false;
    uint64_t tag = 0;
    uint64_t start_ns = 0;
    Batch host;          // the submitter's pointers, for copying outputs back
    uint64_t out_offset = 0;
    uint64_t out_bytes = 0;
  };
  CudaDeviceOptions options;
  Slot slots[kCudaSlots];
  uint64_t submitted = 0;
  std::string failure;

  ~Impl() {
    for (Slot& s : slots) {
      if (s.stream != nullptr) cudaStreamSynchronize(s.stream);
      if (s.done != nullptr) cudaEventDestroy(s.done);
      if (s.stream != nullptr) cudaStreamDestroy(s.stream);
      if (s.pinned != nullptr) cudaFreeHost(s.pinned);
      if (s.device != nullptr) cudaFree(s.device);
      if (s.scratch != nullptr) cudaFree(s.scratch);
    }
  }
};

Result<std::unique_ptr<CudaDevice>> CudaDevice::open(CudaDeviceOptions options) {
  TALLY_ASSERT(options.slot_bytes >= kAlignBytes && options.slot_bytes <= kCudaSlotBytesMax);
  TALLY_ASSERT(options.scratch_bytes <= kCudaSlotBytesMax);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= options.device_ordinal) {
    cudaGetLastError();  // clear the sticky "no device" error
    return Status::unavailable("cuda: no device present");
  }
  TALLY_RETURN_IF_ERROR(cuda_status(cudaSetDevice(options.device_ordinal), "set device"));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (Impl::Slot& s : impl->slots) {
    TALLY_RETURN_IF_ERROR(cuda_status(cudaHostAlloc(&s.pinned, options.slot_bytes, cudaHostAllocDefault), "pinned alloc"));
    TALLY_RETURN_IF_ERROR(cuda_status(cudaMalloc(&s.device, options.slot_bytes), "device alloc"));
    TALLY_RETURN_IF_ERROR(cuda_status(cudaMalloc(&s.scratch, options.scratch_bytes), "scratch alloc"));
    TALLY_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "stream"));
    TALLY_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "event"));
  }
  cudaDeviceProp prop{};
  TALLY_RETURN_IF_ERROR(cuda_status(cudaGetDeviceProperties(&prop, options.device_ordinal), "properties"));
  std::unique_ptr<CudaDevice> dev(new CudaDevice(std::move(impl)));
  dev->caps_.name = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
  return dev;
}

CudaDevice::CudaDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  caps_.backend = Backend::kCuda;
  caps_.in_flight_max = kCudaSlots;
  // Items are bounded by what fits in one slot; the exact fit is checked per batch in submit.
  for (auto& l : caps_.ops) l = OpLimits{true, kernels::kBatchItemsMax, impl_->options.slot_bytes / 2};
}

CudaDevice::~CudaDevice() = default;

Status CudaDevice::submit(const Batch& batch, uint64_t tag) {
  if (failed_) return Status::unavailable("cuda: device failed: " + impl_->failure);
  TALLY_RETURN_IF_ERROR(kernels::validate(batch));
  Impl::Slot* slot = nullptr;
  for (Impl::Slot& s : impl_->slots) {
    if (!s.busy) {
      slot = &s;
      break;
    }
  }
  if (slot == nullptr) return Status::exhausted("cuda: both slots busy");
  // Size the staged copy: inputs first, then outputs, each array aligned.
  Batch sizing = batch;
  uint64_t in_bytes = 0, out_bytes = 0;
  layout::for_each_array(sizing, [&](auto*&, uint64_t bytes, bool output) {
    (output ? out_bytes : in_bytes) += align_up(bytes);
  });
  if (in_bytes + out_bytes > impl_->options.slot_bytes) return Status::invalid("cuda: batch larger than a slot");
  size_t scratch_need = 0;
  if (batch.op == Op::kResolve) scratch_need = kernels::thrust_cuda::resolve_scratch_bytes(batch.resolve);
  if (batch.op == Op::kMerkle) scratch_need = kernels::thrust_cuda::merkle_scratch_bytes(batch.merkle);
  if (scratch_need > impl_->options.scratch_bytes) return Status::invalid("cuda: batch needs more scratch than a slot has");

  // Copy inputs into pinned memory and point a device view at the device copies.
  Batch view = batch;
  uint64_t in_at = 0, out_at = in_bytes;
  layout::for_each_array(view, [&](auto*& ptr, uint64_t bytes, bool output) {
    uint64_t& at = output ? out_at : in_at;
    if (!output && bytes > 0) std::memcpy(slot->pinned + at, ptr, bytes);
    using T = std::remove_cv_t<std::remove_pointer_t<std::remove_reference_t<decltype(ptr)>>>;
    ptr = reinterpret_cast<T*>(slot->device + at);
    at += align_up(bytes);
  });
  TALLY_ASSERT(in_at == in_bytes && out_at == in_bytes + out_bytes);

  ++impl_->submitted;
  Status st = Status::ok();
  if (impl_->options.inject_failure_at_batch == impl_->submitted) {
    st = Status::unavailable("cuda: injected failure");
  }
  if (st.is_ok() && in_bytes > 0) {
    st = cuda_status(cudaMemcpyAsync(slot->device, slot->pinned, in_bytes, cudaMemcpyHostToDevice, slot->stream), "copy in");
  }
  if (st.is_ok()) {
    kernels::ThrustScratch scratch{slot->scratch, impl_->options.scratch_bytes, slot->stream};
    switch (view.op) {
      case Op::kChecksum: st = kernels::cuda::checksum(view.checksum, slot->stream); break;
      case Op::kPartition: st = kernels::cuda::partition(view.partition, slot->stream); break;
      case Op::kTally: st = kernels::cuda::tally(view.tally, slot->stream); break;
      case Op::kResolve: st = kernels::thrust_cuda::resolve(view.resolve, scratch); break;
      case Op::kMerkle: st = kernels::thrust_cuda::merkle(view.merkle, scratch); break;
    }
  }
  if (st.is_ok() && out_bytes > 0) {
    st = cuda_status(cudaMemcpyAsync(slot->pinned + in_bytes, slot->device + in_bytes, out_bytes, cudaMemcpyDeviceToHost,
                                     slot->stream), "copy out");
  }
  if (st.is_ok()) st = cuda_status(cudaEventRecord(slot->done, slot->stream), "record");
  slot->busy = true;
  slot->tag = tag;
  slot->start_ns = now_ns();
  slot->host = batch;
  slot->out_offset = in_bytes;
  slot->out_bytes = out_bytes;
  if (!st.is_ok()) {
    // The batch is accepted and completes with the error, so the scheduler re-runs it on the CPU;
    // the device takes no more work.
    failed_ = true;
    impl_->failure = st.message();
  }
  return Status::ok();
}

size_t CudaDevice::poll(std::span<Completion> out, uint64_t wait_ns) {
  const uint64_t deadline_ns = now_ns() + wait_ns;
  size_t n = 0;
  while (true) {
    bool any_busy = false;
    for (Impl::Slot& s : impl_->slots) {
      if (!s.busy) continue;
      any_busy = true;
      if (n == out.size()) break;
      Status st = Status::ok();
      if (failed_) {
        st = Status::unavailable("cuda: device failed: " + impl_->failure);
      } else {
        const cudaError_t q = cudaEventQuery(s.done);
        if (q == cudaErrorNotReady) continue;
        st = cuda_status(q, "batch");
        if (!st.is_ok()) {
          failed_ = true;
          impl_->failure = st.message();
        }
      }
      if (st.is_ok()) {
        // Outputs from pinned memory to the submitter's arrays, in the order they were placed.
        uint64_t at = s.out_offset;
        Batch host = s.host;
        layout::for_each_array(host, [&](auto*& ptr, uint64_t bytes, bool output) {
          if (!output) return;
          if (bytes > 0) std::memcpy(const_cast<void*>(static_cast<const void*>(ptr)), s.pinned + at, bytes);
          at += align_up(bytes);
        });
        TALLY_ASSERT(at == s.out_offset + s.out_bytes);
      }
      out[n++] = Completion{s.tag, std::move(st), now_ns() - s.start_ns};
      s.busy = false;
    }
    if (n > 0 || !any_busy || out.empty() || now_ns() >= deadline_ns) break;
    std::this_thread::sleep_for(std::chrono::nanoseconds(kPollSleepNs));
  }
  return n;
}

uint32_t CudaDevice::in_flight() const {
  uint32_t n = 0;
  for (const Impl::Slot& s : impl_->slots) n += s.busy ? 1 : 0;
  return n;
}

}  // namespace tally::drivers
