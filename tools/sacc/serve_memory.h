// `sacc serve`'s memory accounting beside the weights: the room one request's run leaves on the device (its
// KV cache and prefill workspace as the memory plan counts them), which the scheduler shares among the KV
// caches of the requests running at once and the prefix cache.
#pragma once

#include "tools/sacc/engine_setup.h"
#include "tools/sacc/serve_scheduler.h"

namespace sacc::cli {

// Measured once, after the backend has been made (the weights loaded): on a GPU the DeviceAllocator's
// budget less what it holds; on the CPU the available memory, capped by --budget less the weights. Null
// where the room is unknown or not one device's (several GPUs place layers per GPU): the slots alone limit.
// `setup` must outlive the result.
RoomBeside make_room_beside(const EngineArgs& args, const EngineSetup& setup);

}  // namespace sacc::cli
