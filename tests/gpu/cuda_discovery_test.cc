// Device discovery, on any machine: a failed discovery carries the CUDA runtime's own error (so a
// broken GPU never reads as "no GPU"), and TALLY_REQUIRE_GPU=1 turns an unusable cuda backend from
// an absent one into an error. Runs without a GPU (label unit); with one, it checks the open works.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "drivers/cuda/cuda_device.h"
#include "host/offload/engine.h"

namespace tally::drivers {
namespace {

// What the runtime itself says about this machine, asked directly.
struct Truth {
  cudaError_t error = cudaSuccess;
  int count = 0;
};

Truth ask_runtime() {
  Truth t;
  t.error = cudaGetDeviceCount(&t.count);
  static_cast<void>(cudaGetLastError());
  return t;
}

// Sets or clears TALLY_REQUIRE_GPU for one scope.
class RequireGpu {
 public:
  explicit RequireGpu(bool on) {
    if (on) setenv(kRequireGpuVariable, "1", 1);
    else unsetenv(kRequireGpuVariable);
  }
  ~RequireGpu() { unsetenv(kRequireGpuVariable); }
};

TEST(CudaDiscovery, OpenReportsTheRuntimesErrorOrOpens) {
  const Truth t = ask_runtime();
  auto dev = CudaDevice::open();
  if (t.error != cudaSuccess) {
    ASSERT_FALSE(dev.is_ok());
    EXPECT_EQ(dev.status().code(), Code::kUnavailable);
    const std::string& why = dev.status().message();
    EXPECT_NE(why.find("device discovery failed"), std::string::npos) << why;
    EXPECT_NE(why.find(cudaGetErrorString(t.error)), std::string::npos) << why;
    EXPECT_NE(why.find(cudaGetErrorName(t.error)), std::string::npos) << why;
    return;
  }
  ASSERT_GT(t.count, 0);
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  EXPECT_NE(dev.value()->capabilities().name.find("sm_"), std::string::npos);
}

TEST(CudaDiscovery, AnOrdinalBeyondTheDevicesIsNamed) {
  const Truth t = ask_runtime();
  if (t.error != cudaSuccess) GTEST_SKIP() << "discovery fails here: covered by the test above";
  auto dev = CudaDevice::open(CudaDeviceOptions{.device_ordinal = t.count});
  ASSERT_FALSE(dev.is_ok());
  EXPECT_EQ(dev.status().code(), Code::kUnavailable);
  EXPECT_NE(dev.status().message().find("no device with ordinal " + std::to_string(t.count)), std::string::npos)
      << dev.status().message();
}

TEST(CudaDiscovery, RequiredGpuMakesAnUnusableOneAnError) {
  const Truth t = ask_runtime();
  const offload::DeviceOptions sizes;
  offload::EngineOptions eo;
  eo.backends = {"cpu", "cuda"};
  if (t.error == cudaSuccess && t.count > 0) {
    RequireGpu on(true);
    auto dev = offload::open_device("cuda", sizes);
    ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
    auto engine = offload::Engine::open(eo, SystemClock::instance());
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    EXPECT_EQ(engine.value()->backends(), "cpu,cuda");
    return;
  }
  {
    RequireGpu off(false);
    auto dev = offload::open_device("cuda", sizes);
    ASSERT_FALSE(dev.is_ok());
    EXPECT_EQ(dev.status().code(), Code::kUnavailable);
    auto engine = offload::Engine::open(eo, SystemClock::instance());
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    EXPECT_EQ(engine.value()->backends(), "cpu");
    EXPECT_NE(engine.value()->absent().find(cudaGetErrorString(t.error)), std::string::npos)
        << engine.value()->absent();
  }
  {
    RequireGpu on(true);
    auto dev = offload::open_device("cuda", sizes);
    ASSERT_FALSE(dev.is_ok());
    EXPECT_NE(dev.status().code(), Code::kUnavailable);
    EXPECT_NE(dev.status().message().find(cudaGetErrorString(t.error)), std::string::npos) << dev.status().message();
    EXPECT_NE(dev.status().message().find(kRequireGpuVariable), std::string::npos) << dev.status().message();
    auto engine = offload::Engine::open(eo, SystemClock::instance());
    ASSERT_FALSE(engine.is_ok());
    EXPECT_NE(engine.status().message().find(cudaGetErrorString(t.error)), std::string::npos)
        << engine.status().message();
  }
}

}  // namespace
}  // namespace tally::drivers
