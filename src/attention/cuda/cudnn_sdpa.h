// cuDNN 9 fused scaled-dot-product attention: the strongest dense baseline on Hopper and a runtime choice
// (`--attention cudnn`). cuDNN is loaded at run time (dlopen), never linked, so the engine builds and runs
// where cuDNN is absent; there every call returns UNSUPPORTED with a message saying how to install or point
// to it.
//
// Where the library is looked for, first hit wins:
//   1. $SACC_CUDNN_PATH: a folder holding libcudnn.so.9, or the library file itself;
//   2. libcudnn.so.9 on the loader's search path (LD_LIBRARY_PATH, ldconfig).
// cuDNN 9 as shipped with PyTorch lives in `python3 -c "import nvidia.cudnn;
// print(nvidia.cudnn.__path__[0])"`/lib (nvidia.cudnn is a namespace package: it has no __file__).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "attention/attention_params.h"

namespace sacc {

// OK when libcudnn.so.9 (major version 9) could be loaded; UNSUPPORTED with what was tried otherwise. Loads
// the library once per process; cheap to call again.
Status cudnn_sdpa_available();

// Version of the loaded cuDNN as major * 10000 + minor * 100 + patch (91900 for 9.19.0); 0 when unavailable.
int cudnn_loaded_version();
// Path of the loaded library (for results files); empty when unavailable.
std::string cudnn_loaded_path();

// Causal GQA attention through cuDNN's fused flash SDPA on the current device and `stream`:
// O = softmax(scale * Q Kᵀ, causal) V, bf16 in and out, fp32 softmax; the log-sum-exp when params.maybe_lse.
// The first call for a (device, shape, strides, scale, lse) builds a cuDNN execution plan (tens of ms); later
// calls only launch it. Errors: UNSUPPORTED when cuDNN is missing or rejects the shape (cuDNN's reason
// quoted), INVALID_ARGUMENT for a bad shape, CUDA_ERROR when execution fails. Thread-safe.
Status cudnn_sdpa_run(const AttentionParams& params, cudaStream_t stream);

}  // namespace sacc
