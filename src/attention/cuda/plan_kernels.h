// Launchers of the plan kernels, one per stage (host-callable; each enqueues on `stream` without syncing and
// returns the launch error). Plain CUDA errors: .cu files cannot include core/status.h (plan_device_types.h).
#pragma once

#include <cuda_runtime_api.h>

#include "attention/cuda/plan_device_types.h"

namespace sacc::plan_detail {

// Interval-Slash: vertical and slash scores of every INTERVAL_SLASH index head ...
cudaError_t launch_interval_slash_estimation(const PlanLayout& layout, const PlanInputs& inputs,
                                             char* workspace, cudaStream_t stream);
// ... then its top-k selections: chosen verticals as an ascending list, chosen slashes as a prefix count over
// offsets and as a cover table by block distance.
cudaError_t launch_interval_slash_select(const PlanLayout& layout, char* workspace, cudaStream_t stream);

// Block-Cluster: pooled Q/K, block scores and each slot's chosen key blocks (staged, ascending).
cudaError_t launch_block_cluster_estimation(const PlanLayout& layout, const PlanInputs& inputs,
                                            char* workspace, cudaStream_t stream);

// Runtime pattern choice of the heads with a Block-Cluster alternative (after both estimations): writes the
// kind each such head takes into head_choice.
cudaError_t launch_pattern_choice(const PlanLayout& layout, char* workspace, cudaStream_t stream);

// Counts every slot's lists, scans them into CSR offsets and fills the ids (all pattern kinds in one launch).
cudaError_t launch_index_build(const PlanLayout& layout, char* workspace, cudaStream_t stream);

}  // namespace sacc::plan_detail
