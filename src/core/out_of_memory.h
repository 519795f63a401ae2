// Out of memory, reported the same way for every allocation — host or device, weights, KV cache or workspace:
// an OUT_OF_MEMORY Status that names what failed to allocate, how many bytes, where and what was left, and,
// once a caller that knows it adds it, the run's memory plan. Host allocations throw std::bad_alloc (or
// std::length_error for an absurd size); guard_host_allocation turns either into that Status at the boundary
// that knows what was being allocated, so the process never terminates on it.
#pragma once

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string_view>
#include <type_traits>

#include "core/status.h"

namespace sacc {

// "<what>: cannot allocate <bytes> on <device> (<available> available)"; `bytes` or `available` 0: unknown,
// left out. `detail` (the allocator's own words) is appended after a colon when not empty.
Status allocation_failed(std::string_view what, uint64_t bytes, std::string_view device, uint64_t available,
                         std::string_view detail = {});

// Host memory this process may still take: MemAvailable, capped by what RLIMIT_AS leaves beside the
// process's current address space (VmSize). 0 when unknown.
uint64_t host_memory_available();

// Runs `body` (returning void, Status or Result<T>: the guard returns Status for void, else the same type); a
// std::bad_alloc or std::length_error it throws becomes allocation_failed(what, bytes, "the host",
// host_memory_available()).
template <typename Body, typename R = std::invoke_result_t<Body>,
          typename Out = std::conditional_t<std::is_void_v<R>, Status, R>>
Out guard_host_allocation(std::string_view what, uint64_t bytes, Body&& body) {
  try {
    if constexpr (std::is_void_v<R>) {
      body();
      return Status::ok();
    } else {
      return body();
    }
  } catch (const std::bad_alloc&) {
    return allocation_failed(what, bytes, "the host", host_memory_available());
  } catch (const std::length_error&) {
    return allocation_failed(what, bytes, "the host", host_memory_available());
  }
}

// The heading attach_memory_plan puts before the plan; a message holding it already has its plan.
inline constexpr std::string_view kMemoryPlanHeading = "memory plan";

// An OUT_OF_MEMORY status with `plan` (a MemoryPlan::describe() table) appended on lines of its own, once;
// any other status, or an empty plan, passes through unchanged.
Status attach_memory_plan(const Status& status, std::string_view plan);

}  // namespace sacc
