#include "tools/sacc/serve_memory.h"

#include <algorithm>

#include "runtime/memory_plan.h"

namespace sacc::cli {

RoomBeside make_room_beside(const EngineArgs& args, const EngineSetup& setup) {
  uint64_t room = setup.options.gpus.size() > 1 ? 0 : available_memory(setup.device);
  if (room && setup.device.is_cpu() && !args.budget.empty()) {
    // The budget caps the whole device, weights included.
    if (Result<uint64_t> cap = parse_bytes(args.budget); cap)
      room = std::min(room, *cap > setup.model.weights.total_bytes_on_host
                                ? *cap - setup.model.weights.total_bytes_on_host
                                : uint64_t{0});
  }
  if (!room) return nullptr;
  const EngineSetup* plan_setup = &setup;
  return [room, args, plan_setup](int64_t prompt, int64_t max_new, const BackendOptions& options) {
    // A shorter prompt's prefill runs in the workspace kept for the prefill chunks (BackendOptions::
    // prefill_workspace_tokens), held all along: counted as this long.
    const int64_t planned = std::max(prompt, plan_setup->options.prefill_workspace_tokens);
    const uint64_t need = run_bytes_beside_weights(args, *plan_setup, planned, max_new, &options);
    return room > need ? room - need : uint64_t{0};
  };
}

}  // namespace sacc::cli
