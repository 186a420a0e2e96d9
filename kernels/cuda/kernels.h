// Launchers of the CUDA kernels for checksum, partition and tally. Views point at device memory;
// each call enqueues on `stream` (a cudaStream_t) and reports launch errors; nothing is allocated.
#pragma once

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::kernels::cuda {

Status checksum(const ChecksumBatch& device_view, void* stream);
Status partition(const PartitionBatch& device_view, void* stream);
Status tally(const TallyBatch& device_view, void* stream);

}  // namespace tally::kernels::cuda
