// gpu-resident-bench: the offload kernels on data already in GPU memory, against the card's own
// device-to-device copy bandwidth (checksum) and one CPU core running the reference (resolve, merkle).
// `--probe` only reports the runtime, the driver and the devices. Without a usable GPU it exits 77
// (the GPU tests' "skipped"), or 1 under TALLY_REQUIRE_GPU=1.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "drivers/device.h"

#include "drivers/cuda/layout.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels.h"
#include "kernels/testing/batch_gen.h"
#include "kernels/thrust/thrust_ops.h"

namespace {

using namespace tally;
using namespace tally::kernels;

constexpr int kRuns = 10;
constexpr int kNoDeviceExitCode = 77;

#define CHECK_CUDA(expr)                                                                    \
  do {                                                                                      \
    cudaError_t _e = (expr);                                                                \
    if (_e != cudaSuccess) {                                                                \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(_e)); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

// Copies every array of a batch to the device once and returns the device view (outputs allocated).
struct DeviceBatch {
  Batch view;
  std::vector<void*> allocations;
  explicit DeviceBatch(const Batch& host) : view(host) {
    drivers::layout::for_each_array(view, [&](auto*& ptr, uint64_t bytes, bool output) {
      void* d = nullptr;
      CHECK_CUDA(cudaMalloc(&d, bytes > 0 ? bytes : 1));
      allocations.push_back(d);
      if (!output && bytes > 0) CHECK_CUDA(cudaMemcpy(d, ptr, bytes, cudaMemcpyHostToDevice));
      using T = std::remove_cv_t<std::remove_pointer_t<std::remove_reference_t<decltype(ptr)>>>;
      ptr = static_cast<T*>(d);
    });
  }
  ~DeviceBatch() {
    for (void* p : allocations) cudaFree(p);
  }
  // Outputs back into the host batch, to check them against the reference.
  void copy_outputs(Batch& host) {
    std::vector<std::pair<void*, uint64_t>> device_outputs;
    drivers::layout::for_each_array(view, [&](auto*& ptr, uint64_t bytes, bool output) {
      if (output) device_outputs.push_back({const_cast<void*>(static_cast<const void*>(ptr)), bytes});
    });
    size_t k = 0;
    drivers::layout::for_each_array(host, [&](auto*& ptr, uint64_t bytes, bool output) {
      if (!output) return;
      if (bytes > 0) CHECK_CUDA(cudaMemcpy(const_cast<void*>(static_cast<const void*>(ptr)), device_outputs[k].first, bytes, cudaMemcpyDeviceToHost));
      ++k;
    });
  }
};

template <typename Fn>
double gpu_seconds(Fn&& fn) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  fn();  // warm-up
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaEventRecord(a));
  for (int i = 0; i < kRuns; ++i) fn();
  CHECK_CUDA(cudaEventRecord(b));
  CHECK_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / 1000.0 / kRuns;
}

template <typename Fn>
double cpu_seconds(Fn&& fn) {
  fn();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
}

}  // namespace

// CUDA versions as "13.0" from 13000.
void print_version(const char* what, int v) { std::printf("%s,%d.%d\n", what, v / 1000, v % 1000 / 10); }

// Runtime and driver versions and every device; 0 when at least one device is usable.
int probe() {
  int runtime = 0, driver = 0;
  CHECK_CUDA(cudaRuntimeGetVersion(&runtime));
  print_version("cuda_runtime", runtime);
  // 0 when no driver is installed: reported as is, the discovery below says why.
  if (cudaDriverGetVersion(&driver) == cudaSuccess) print_version("cuda_driver_api", driver);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    std::printf("devices,0,%s: %s\n", cudaGetErrorName(err), cudaGetErrorString(err));
    return 1;
  }
  std::printf("devices,%d\n", count);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    CHECK_CUDA(cudaGetDeviceProperties(&p, d));
    std::printf("device%d,%s,sm_%d%d,%.1f GiB,%d SMs,pci %04x:%02x:%02x\n", d, p.name, p.major, p.minor,
                static_cast<double>(p.totalGlobalMem) / (1 << 30), p.multiProcessorCount, p.pciDomainID, p.pciBusID,
                p.pciDeviceID);
  }
  return count > 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  const bool probe_only = argc > 1 && std::strcmp(argv[1], "--probe") == 0;
  if (argc > 1 && !probe_only) {
    std::fprintf(stderr, "usage: gpu-resident-bench [--probe]\n");
    return 2;
  }
  if (probe() != 0) {
    std::printf("gpu-resident-bench: no usable CUDA device%s\n",
                drivers::gpu_required() ? " (TALLY_REQUIRE_GPU=1: a failure)" : "");
    return drivers::gpu_required() ? 1 : kNoDeviceExitCode;
  }
  if (probe_only) return 0;
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device,%s\n", prop.name);

  // Copy bandwidth: device-to-device, bytes copied per second.
  const uint64_t copy_bytes = uint64_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  CHECK_CUDA(cudaMalloc(&src, copy_bytes));
  CHECK_CUDA(cudaMalloc(&dst, copy_bytes));
  CHECK_CUDA(cudaMemset(src, 0x5a, copy_bytes));
  const double copy_s = gpu_seconds([&] { CHECK_CUDA(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); });
  const double copy_gbs = copy_bytes / copy_s / 1e9;
  std::printf("copy_d2d_GBps,%.1f\n", copy_gbs);
  cudaFree(src);
  cudaFree(dst);

  std::printf("op,items,item_bytes,gpu_us,cpu_core_us,gpu_GBps,ratio,check\n");
  Rng rng(99);
  for (uint32_t item_bytes : {4096u, 65536u, 1u << 20}) {
    const uint32_t items = static_cast<uint32_t>((uint64_t{512} << 20) / item_bytes);
    OwnedBatch host = OwnedBatch::random({.op = Op::kChecksum, .items = items, .item_bytes_min = item_bytes, .item_bytes_max = item_bytes}, rng);
    OwnedBatch expected = host;
    TALLY_ASSERT(run_reference(expected.batch()).is_ok());
    DeviceBatch dev(host.batch());
    const double s = gpu_seconds([&] { TALLY_ASSERT(cuda::checksum(dev.view.checksum, nullptr).is_ok()); });
    dev.copy_outputs(host.batch());
    const double gbs = static_cast<double>(dev.view.checksum.blob_bytes) / s / 1e9;
    std::printf("checksum,%u,%u,%.1f,,%.1f,%.2f_of_copy,%s\n", items, item_bytes, s * 1e6, gbs, gbs / copy_gbs,
                expected.compare_outputs(host).empty() ? "ok" : "MISMATCH");
  }
  for (int which = 0; which < 2; ++which) {
    const uint32_t items = kBatchItemsMax;
    BatchShape shape = which == 0 ? BatchShape{.op = Op::kResolve, .items = items}
                                  : BatchShape{.op = Op::kMerkle, .items = items, .merkle_depth = 12, .merkle_partitions = 64};
    OwnedBatch host = OwnedBatch::random(shape, rng);
    OwnedBatch expected = host;
    const double cpu_s = cpu_seconds([&] { TALLY_ASSERT(run_reference(expected.batch()).is_ok()); });
    DeviceBatch dev(host.batch());
    const size_t scratch_bytes = which == 0 ? thrust_cuda::resolve_scratch_bytes(dev.view.resolve)
                                            : thrust_cuda::merkle_scratch_bytes(dev.view.merkle);
    void* scratch = nullptr;
    CHECK_CUDA(cudaMalloc(&scratch, scratch_bytes));
    ThrustScratch sc{scratch, scratch_bytes, nullptr};
    const double s = gpu_seconds([&] {
      const Status st = which == 0 ? thrust_cuda::resolve(dev.view.resolve, sc) : thrust_cuda::merkle(dev.view.merkle, sc);
      TALLY_ASSERT(st.is_ok());
    });
    dev.copy_outputs(host.batch());
    cudaFree(scratch);
    std::printf("%s,%u,,%.1f,%.1f,,%.1fx_one_core,%s\n", which == 0 ? "resolve_lww" : "merkle_build", items, s * 1e6, cpu_s * 1e6,
                cpu_s / s, expected.compare_outputs(host).empty() ? "ok" : "MISMATCH");
  }
  return 0;
}
