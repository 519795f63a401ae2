// cuDNN SDPA through the cudnn-frontend graph API in its dynamic-loading mode: every backend call goes
// through dlsym on the handle we dlopen here (cudnn_frontend::cudnn_dlhandle), so nothing links against
// libcudnn. The frontend reports errors as values but may throw std::runtime_error when a symbol is missing;
// every call into it is wrapped so no exception crosses this file's API.
#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
#define CUDNN_FRONTEND_SKIP_JSON_LIB

#include "attention/cuda/cudnn_sdpa.h"

#include <cudnn_frontend.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/device_memory.h"

namespace cudnn_frontend {
// The frontend's dynamic-loading mode resolves every backend symbol from this handle.
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace sacc {
namespace {

namespace fe = cudnn_frontend;

constexpr const char* kLibraryName = "libcudnn.so.9";
constexpr const char* kInstallHint =
    "install cuDNN 9 (e.g. `pip install nvidia-cudnn-cu13`, which PyTorch also ships) and point "
    "SACC_CUDNN_PATH at "
    "the folder holding libcudnn.so.9 (for pip: `python3 -c \"import nvidia.cudnn; "
    "print(nvidia.cudnn.__path__[0])\"`/lib) or add that folder to LD_LIBRARY_PATH";

// Tensor uids of the graph's variant pack.
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats };

struct Library {
  Status status;
  int version = 0;
  std::string path;
};

// dlopen once per process. A handle is never closed: cuDNN keeps per-process state until exit.
const Library& library() {
  static const Library lib = [] {
    Library result;
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("SACC_CUDNN_PATH"); env && *env) {
      const std::string path(env);
      candidates.push_back(
          path.ends_with(".so") || path.find(".so.") != std::string::npos ? path : path + "/" + kLibraryName);
    }
    candidates.push_back(kLibraryName);
    std::string tried;
    void* handle = nullptr;
    for (const std::string& candidate : candidates) {
      handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (handle) {
        result.path = candidate;
        break;
      }
      const char* error = dlerror();
      tried += fmt::format("\n  {}: {}", candidate, error ? error : "not found");
    }
    if (!handle) {
      result.status = make_error(StatusCode::UNSUPPORTED,
                                 "cuDNN 9 is not available; tried:{}\nTo use it, {}.", tried, kInstallHint);
      return result;
    }
    using GetVersion = size_t (*)();
    auto get_version = reinterpret_cast<GetVersion>(dlsym(handle, "cudnnGetVersion"));
    result.version = get_version ? static_cast<int>(get_version()) : 0;
    if (result.version / 10000 != 9) {
      result.status = make_error(StatusCode::UNSUPPORTED, "{} reports cuDNN version {}, need 9.x; {}.",
                                 result.path, result.version, kInstallHint);
      result.version = 0;
      return result;
    }
    fe::cudnn_dlhandle = handle;
    // Report the resolved file, not just the soname, so results files say which cuDNN ran.
    if (void* sym = dlsym(handle, "cudnnGetVersion")) {
      Dl_info info{};
      if (dladdr(sym, &info) && info.dli_fname) result.path = info.dli_fname;
    }
    return result;
  }();
  return lib;
}

Status frontend_error(fe::error_t error, const char* what) {
  return make_error(StatusCode::UNSUPPORTED, "cuDNN SDPA: {} failed: {}", what, error.get_message());
}

struct GraphKey {
  int device;
  int64_t seq_len;
  int num_q_heads, num_kv_heads, head_dim;
  int64_t q_token_stride, q_head_stride, kv_token_stride, kv_head_stride, o_token_stride, o_head_stride;
  uint32_t scale_bits;
  bool with_lse;
  auto tie() const {
    return std::tie(device, seq_len, num_q_heads, num_kv_heads, head_dim, q_token_stride, q_head_stride,
                    kv_token_stride, kv_head_stride, o_token_stride, o_head_stride, scale_bits, with_lse);
  }
  bool operator<(const GraphKey& other) const { return tie() < other.tie(); }
};

struct CachedGraph {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t workspace_bytes = 0;
};

// Process-wide cuDNN state: one handle per device, the built graphs, and one workspace per (device, stream)
// so calls on different streams never share scratch memory.
struct State {
  std::mutex mutex;
  std::map<int, cudnnHandle_t> handles;
  std::map<GraphKey, CachedGraph> graphs;
  std::map<std::pair<int, cudaStream_t>, DeviceBuffer> workspaces;
};

State& state() {
  // Leaked on purpose: destroying cuDNN handles and device buffers after the CUDA runtime shut down at exit
  // would fail; the OS reclaims everything.
  static State* s = new State;
  return *s;
}

Result<cudnnHandle_t> handle_for(State& s, int device) {
  if (auto it = s.handles.find(device); it != s.handles.end()) return it->second;
  cudnnHandle_t handle = nullptr;
  const cudnnStatus_t status = fe::detail::create_handle(&handle);
  if (status != CUDNN_STATUS_SUCCESS) {
    return make_error(StatusCode::CUDA_ERROR, "cuDNN: cudnnCreate on cuda:{} failed: {}", device,
                      fe::detail::get_error_string(status));
  }
  s.handles.emplace(device, handle);
  return handle;
}

Result<CachedGraph> build_graph(const GraphKey& key, cudnnHandle_t handle, int sm_version) {
  const int64_t L = key.seq_len, hq = key.num_q_heads, hkv = key.num_kv_heads, d = key.head_dim;
  auto graph = std::make_shared<fe::graph::Graph>();
  graph->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT)
      .set_sm_version(sm_version);
  // cuDNN's SDPA layout is [batch, heads, seq, dim] with arbitrary strides; ours is [L, H, d] = batch 1.
  auto q = graph->tensor(fe::graph::Tensor_attributes()
                             .set_name("Q")
                             .set_uid(kQ)
                             .set_dim({1, hq, L, d})
                             .set_stride({L * key.q_token_stride, key.q_head_stride, key.q_token_stride, 1}));
  auto k =
      graph->tensor(fe::graph::Tensor_attributes()
                        .set_name("K")
                        .set_uid(kK)
                        .set_dim({1, hkv, L, d})
                        .set_stride({L * key.kv_token_stride, key.kv_head_stride, key.kv_token_stride, 1}));
  auto v =
      graph->tensor(fe::graph::Tensor_attributes()
                        .set_name("V")
                        .set_uid(kV)
                        .set_dim({1, hkv, L, d})
                        .set_stride({L * key.kv_token_stride, key.kv_head_stride, key.kv_token_stride, 1}));
  float scale = 0.0f;
  std::memcpy(&scale, &key.scale_bits, sizeof(scale));
  auto options = fe::graph::SDPA_attributes()
                     .set_name("sacc_sdpa")
                     .set_generate_stats(key.with_lse)
                     .set_causal_mask(true)
                     .set_attn_scale(scale);
  auto [o, stats] = graph->sdpa(q, k, v, options);
  o->set_output(true)
      .set_uid(kO)
      .set_dim({1, hq, L, d})
      .set_stride({L * key.o_token_stride, key.o_head_stride, key.o_token_stride, 1});
  if (key.with_lse) {
    // Our LSE layout is [Hq, L] = cuDNN's stats [1, Hq, L, 1] contiguous.
    stats->set_output(true)
        .set_uid(kStats)
        .set_data_type(fe::DataType_t::FLOAT)
        .set_dim({1, hq, L, 1})
        .set_stride({hq * L, L, 1, 1});
  }

  if (auto e = graph->validate(); e.is_bad()) return frontend_error(e, "graph validation");
  if (auto e = graph->build_operation_graph(handle); e.is_bad())
    return frontend_error(e, "building the graph");
  if (auto e = graph->create_execution_plans({fe::HeurMode_t::A}); e.is_bad()) {
    return frontend_error(e, "choosing an engine");
  }
  if (auto e = graph->check_support(); e.is_bad()) return frontend_error(e, "support check");
  if (auto e = graph->build_plans(); e.is_bad()) return frontend_error(e, "building the plan");
  CachedGraph cached;
  cached.graph = std::move(graph);
  if (auto e = cached.graph->get_workspace_size(cached.workspace_bytes); e.is_bad()) {
    return frontend_error(e, "workspace query");
  }
  return cached;
}

Status validate(const AttentionParams& p) {
  SACC_RETURN_IF_ERROR(p.shape.validate());
  if (!p.q || !p.k || !p.v || !p.o) {
    return make_error(StatusCode::INVALID_ARGUMENT, "cuDNN SDPA: Q, K, V and O must be device pointers");
  }
  SACC_RETURN_IF_ERROR(p.require_whole_prompt("cuDNN SDPA"));
  // cuDNN's flash SDPA needs 16-byte aligned rows and head dims up to 256 (checked again by cuDNN itself).
  if (p.shape.head_dim % 8 != 0 || p.shape.head_dim > 256) {
    return make_error(StatusCode::UNSUPPORTED,
                      "cuDNN SDPA: head dim {} unsupported (needs a multiple of 8, <= 256)",
                      p.shape.head_dim);
  }
  return Status::ok();
}

Status run_locked(State& s, const AttentionParams& p, cudaStream_t stream) {
  int device = 0;
  SACC_CUDA_TRY(cudaGetDevice(&device));
  int sm_major = 0, sm_minor = 0;
  SACC_CUDA_TRY(cudaDeviceGetAttribute(&sm_major, cudaDevAttrComputeCapabilityMajor, device));
  SACC_CUDA_TRY(cudaDeviceGetAttribute(&sm_minor, cudaDevAttrComputeCapabilityMinor, device));
  SACC_ASSIGN_OR_RETURN(cudnnHandle_t handle, handle_for(s, device));

  GraphKey key{device,
               p.shape.seq_len,
               p.shape.num_q_heads,
               p.shape.num_kv_heads,
               p.shape.head_dim,
               p.q_token_stride,
               p.q_head_stride,
               p.kv_token_stride,
               p.kv_head_stride,
               p.o_token_stride,
               p.o_head_stride,
               0,
               p.maybe_lse != nullptr};
  std::memcpy(&key.scale_bits, &p.softmax_scale, sizeof(key.scale_bits));
  auto it = s.graphs.find(key);
  if (it == s.graphs.end()) {
    SACC_ASSIGN_OR_RETURN(CachedGraph built, build_graph(key, handle, sm_major * 10 + sm_minor));
    it = s.graphs.emplace(key, std::move(built)).first;
  }
  const CachedGraph& cached = it->second;

  DeviceBuffer& workspace = s.workspaces[{device, stream}];
  if (workspace.size() < static_cast<size_t>(cached.workspace_bytes)) {
    // The old workspace may still be in use by work queued on this stream.
    SACC_CUDA_TRY(cudaStreamSynchronize(stream));
    workspace.reset();
    SACC_ASSIGN_OR_RETURN(workspace,
                          DeviceBuffer::create(device, cached.workspace_bytes, "cuDNN SDPA workspace"));
  }

  const cudnnStatus_t set = fe::detail::set_stream(handle, stream);
  if (set != CUDNN_STATUS_SUCCESS) {
    return make_error(StatusCode::CUDA_ERROR, "cuDNN: cudnnSetStream failed: {}",
                      fe::detail::get_error_string(set));
  }
  std::unordered_map<int64_t, void*> pack = {
      {kQ, const_cast<void*>(p.q)}, {kK, const_cast<void*>(p.k)}, {kV, const_cast<void*>(p.v)}, {kO, p.o}};
  if (p.maybe_lse) pack.emplace(kStats, p.maybe_lse);
  if (auto e = cached.graph->execute(handle, pack, workspace.data()); e.is_bad()) {
    return make_error(StatusCode::CUDA_ERROR, "cuDNN SDPA: execution failed: {}", e.get_message());
  }
  return Status::ok();
}

}  // namespace

Status cudnn_sdpa_available() {
  return library().status;
}

int cudnn_loaded_version() {
  return library().version;
}

std::string cudnn_loaded_path() {
  return library().status.is_ok() ? library().path : std::string();
}

Status cudnn_sdpa_run(const AttentionParams& params, cudaStream_t stream) {
  SACC_RETURN_IF_ERROR(cudnn_sdpa_available());
  const AttentionParams p = params.with_defaults();
  SACC_RETURN_IF_ERROR(validate(p));
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  try {
    return run_locked(s, p, stream);
  } catch (const std::exception& error) {
    // The frontend throws when the loaded cuDNN (or the CUDA runtime it dlopens) lacks a symbol it needs.
    return make_error(StatusCode::UNSUPPORTED, "cuDNN SDPA: {} ({})", error.what(), kInstallHint);
  }
}

}  // namespace sacc
