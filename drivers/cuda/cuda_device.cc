// CudaDevice: pinned staging, two stream slots, kernel and Thrust launches, error = device failed.
#include "drivers/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>

#include "drivers/cuda/layout.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels.h"
#include "kernels/thrust/thrust_ops.h"

namespace tally::drivers {

namespace {
constexpr uint64_t kAlignBytes = 256;
// poll() re-queries the events back to back for this long before it sleeps on the completion
// callback: a small batch's whole GPU time, so its latency is not rounded up to a thread wake-up.
constexpr uint64_t kPollSpinNs = 20'000;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}
uint64_t align_up(uint64_t x) { return (x + kAlignBytes - 1) / kAlignBytes * kAlignBytes; }

std::string describe(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return Status::unavailable(std::string("cuda: ") + what + ": " + describe(err));
}

// The current device is per host thread: the thread that opened the device is rarely the one that
// submits (tallyd opens every shard's engine on its main thread), so each call binds its own thread.
Status bind_thread(int ordinal) {
  int current = -1;
  TALLY_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&current), "get device"));
  if (current == ordinal) return Status::ok();
  return cuda_status(cudaSetDevice(ordinal), "set device");
}

// A query that answers cudaErrorNotReady may leave it in the thread's last-error slot, where the
// next kernel launch's cudaGetLastError (and Thrust's own checks) would report it as a launch
// failure and retire the device. Only that value is cleared: anything else is a real error.
void clear_not_ready() {
  if (cudaPeekAtLastError() == cudaErrorNotReady) static_cast<void>(cudaGetLastError());
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
    Impl* owner = nullptr;  // for the completion callback
  };
  CudaDeviceOptions options;
  Slot slots[kCudaSlots];
  uint64_t submitted = 0;
  std::string failure;
  // Completion callbacks (cudaLaunchHostFunc after each batch) count here and wake poll(); poll
  // still asks the events, which alone carry a batch's error.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t callbacks = 0;  // guarded by mu

  // Runs on a CUDA runtime thread once the slot's stream reached it; makes no CUDA call.
  static void CUDART_CB on_batch_done(void* arg) {
    Impl* impl = static_cast<Slot*>(arg)->owner;
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      ++impl->callbacks;
    }
    impl->cv.notify_all();
  }

  uint64_t callbacks_seen() {
    std::lock_guard<std::mutex> lock(mu);
    return callbacks;
  }

  ~Impl() {
    // Streams and buffers belong to this device; the destroying thread may have another current.
    static_cast<void>(bind_thread(options.device_ordinal));
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
  TALLY_ASSERT(options.device_ordinal >= 0);
  int count = 0;
  const cudaError_t found = cudaGetDeviceCount(&count);
  if (found != cudaSuccess) {
    // The runtime keeps the error as the thread's last error; it is reported here, not by a later call.
    static_cast<void>(cudaGetLastError());
    // The runtime's own words: "no CUDA-capable device is detected" is a machine without a GPU, any
    // other (driver too old, device busy or lost, not initialized) is a GPU that does not work.
    return Status::unavailable("cuda: device discovery failed: " + describe(found));
  }
  if (count <= options.device_ordinal) {
    return Status::unavailable("cuda: no device with ordinal " + std::to_string(options.device_ordinal) + " (" +
                               std::to_string(count) + " present)");
  }
  TALLY_RETURN_IF_ERROR(cuda_status(cudaSetDevice(options.device_ordinal), "set device"));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  cudaDeviceProp prop{};
  const Status made = [&]() -> Status {
    for (Impl::Slot& s : impl->slots) {
      s.owner = impl.get();
      TALLY_RETURN_IF_ERROR(cuda_status(cudaHostAlloc(&s.pinned, options.slot_bytes, cudaHostAllocDefault), "pinned alloc"));
      TALLY_RETURN_IF_ERROR(cuda_status(cudaMalloc(&s.device, options.slot_bytes), "device alloc"));
      TALLY_RETURN_IF_ERROR(cuda_status(cudaMalloc(&s.scratch, options.scratch_bytes), "scratch alloc"));
      TALLY_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "stream"));
      TALLY_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "event"));
    }
    return cuda_status(cudaGetDeviceProperties(&prop, options.device_ordinal), "properties");
  }();
  if (!made.is_ok()) {
    // Reported here; left as this thread's last error it would fail the next device's first launch.
    static_cast<void>(cudaGetLastError());
    return made;
  }
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
  // The batch's device time runs from here: staging and launches are part of what it costs.
  const uint64_t start_ns = now_ns();
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
  if (st.is_ok()) st = bind_thread(impl_->options.device_ordinal);
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
  if (st.is_ok()) st = cuda_status(cudaLaunchHostFunc(slot->stream, &Impl::on_batch_done, slot), "completion callback");
  slot->busy = true;
  slot->tag = tag;
  slot->start_ns = start_ns;
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
  if (in_flight() == 0) return 0;
  if (!failed_) {
    const Status bound = bind_thread(impl_->options.device_ordinal);
    if (!bound.is_ok()) {
      failed_ = true;
      impl_->failure = bound.message();
    }
  }
  const uint64_t begin_ns = now_ns();
  const uint64_t deadline_ns = begin_ns + wait_ns;
  size_t n = 0;
  while (true) {
    // Read before the queries: a callback that lands after them changes it, so the wait below
    // cannot sleep through a completion it raced with.
    const uint64_t seen = impl_->callbacks_seen();
    bool any_busy = false, any_ready = false;
    for (Impl::Slot& s : impl_->slots) {
      if (!s.busy) continue;
      any_busy = true;
      Status st = Status::ok();
      if (failed_) {
        st = Status::unavailable("cuda: device failed: " + impl_->failure);
      } else {
        const cudaError_t q = cudaEventQuery(s.done);
        if (q == cudaErrorNotReady) {
          clear_not_ready();
          continue;
        }
        st = cuda_status(q, "batch");
        if (!st.is_ok()) {
          failed_ = true;
          impl_->failure = st.message();
        }
      }
      any_ready = true;
      if (n == out.size()) continue;  // ready, but no room: an empty out only asks whether one is
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
    if (n > 0 || any_ready || !any_busy) break;
    const uint64_t now = now_ns();
    if (now >= deadline_ns) break;
    if (now - begin_ns < kPollSpinNs) continue;
    // Nothing ready and the spin is over: sleep until a batch's callback runs or the deadline. A
    // device whose callbacks never come (a lost context) is still asked once the deadline passes.
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->cv.wait_for(lock, std::chrono::nanoseconds(deadline_ns - now), [&] { return impl_->callbacks != seen; });
  }
  return n;
}

uint32_t CudaDevice::in_flight() const {
  uint32_t n = 0;
  for (const Impl::Slot& s : impl_->slots) n += s.busy ? 1 : 0;
  return n;
}

}  // namespace tally::drivers
