#include "runtime/cuda/nccl_comm.h"

#include <cstdlib>

#if defined(SACC_WITH_NCCL)
#include <dlfcn.h>
#include <nccl.h>
#endif

namespace sacc::cuda_rt {

#if defined(SACC_WITH_NCCL)

namespace {

// The few entry points tensor parallel uses, resolved from libnccl.so.2 once.
struct NcclApi {
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclGroupStart) group_start = nullptr;
  decltype(&ncclGroupEnd) group_end = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
};

Result<const NcclApi*> nccl_api() {
  static NcclApi api;
  static std::string error;
  static const bool loaded = [] {
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
      error = dlerror();
      return false;
    }
    auto resolve = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && error.empty()) error = fmt::format("libnccl.so.2 has no {}", name);
    };
    resolve(api.comm_init_all, "ncclCommInitAll");
    resolve(api.comm_destroy, "ncclCommDestroy");
    resolve(api.all_reduce, "ncclAllReduce");
    resolve(api.group_start, "ncclGroupStart");
    resolve(api.group_end, "ncclGroupEnd");
    resolve(api.error_string, "ncclGetErrorString");
    return error.empty();
  }();
  if (!loaded)
    return make_error(StatusCode::UNSUPPORTED,
                      "tensor parallel needs NCCL: {} (put libnccl.so.2 on LD_LIBRARY_PATH, e.g. the "
                      "lib folder of the nvidia-nccl-cu13 pip package, or use --split layer)",
                      error);
  return &api;
}

Status nccl_status(const NcclApi& api, ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return Status::ok();
  return make_error(StatusCode::CUDA_ERROR, "{}: NCCL error {} ({})", what, static_cast<int>(result),
                    api.error_string(result));
}

}  // namespace

struct NcclGroup::Impl {
  const NcclApi* api = nullptr;
  std::vector<ncclComm_t> comms;
};

Result<std::unique_ptr<NcclGroup>> NcclGroup::create(const std::vector<int>& devices) {
  SACC_ASSIGN_OR_RETURN(const NcclApi* api, nccl_api());
  // NVLink multicast (NVLS) must stay off on shared machines: a program that uses it can take the host's
  // GPUs out of service. A value the user set is kept.
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  auto impl = std::make_unique<Impl>();
  impl->api = api;
  impl->comms.resize(devices.size());
  SACC_RETURN_IF_ERROR(nccl_status(
      *api, api->comm_init_all(impl->comms.data(), static_cast<int>(devices.size()), devices.data()),
      "ncclCommInitAll"));
  return std::unique_ptr<NcclGroup>(new NcclGroup(std::move(impl)));
}

NcclGroup::~NcclGroup() {
  for (ncclComm_t comm : impl_->comms)
    if (comm) impl_->api->comm_destroy(comm);
}

Status NcclGroup::all_reduce_bf16(const std::vector<void*>& buffers, size_t count,
                                  const std::vector<cudaStream_t>& streams) {
  const NcclApi& api = *impl_->api;
  if (buffers.size() != impl_->comms.size() || streams.size() != impl_->comms.size())
    return make_error(StatusCode::INTERNAL, "all-reduce over {} buffers and {} streams for {} ranks",
                      buffers.size(), streams.size(), impl_->comms.size());
  // One host thread drives every rank: the group makes NCCL launch all ranks' parts before any waits.
  SACC_RETURN_IF_ERROR(nccl_status(api, api.group_start(), "ncclGroupStart"));
  Status launched = Status::ok();
  for (size_t r = 0; r < buffers.size() && launched; ++r)
    launched = nccl_status(
        api,
        api.all_reduce(buffers[r], buffers[r], count, ncclBfloat16, ncclSum, impl_->comms[r], streams[r]),
        "ncclAllReduce");
  const Status ended = nccl_status(api, api.group_end(), "ncclGroupEnd");
  return launched ? ended : launched;
}

#else  // !SACC_WITH_NCCL

struct NcclGroup::Impl {};

Result<std::unique_ptr<NcclGroup>> NcclGroup::create(const std::vector<int>&) {
  return make_error(StatusCode::UNSUPPORTED,
                    "this sacc was built without NCCL (nccl.h not found at configure time): tensor parallel "
                    "is unavailable; use --split layer");
}

NcclGroup::~NcclGroup() = default;

Status NcclGroup::all_reduce_bf16(const std::vector<void*>&, size_t, const std::vector<cudaStream_t>&) {
  return make_error(StatusCode::UNSUPPORTED, "this sacc was built without NCCL");
}

#endif

NcclGroup::NcclGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

}  // namespace sacc::cuda_rt
