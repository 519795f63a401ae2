// The oracle's only concurrency: independent work items spread over the machine's cores. Results never depend
// on the thread count (each item writes its own outputs).
#pragma once

#include <cstdint>
#include <functional>

namespace sacc::ref {

// Runs body(i) for every i in [0, count), items handed out dynamically to up to hardware_concurrency threads.
void parallel_for(int64_t count, const std::function<void(int64_t)>& body);

}  // namespace sacc::ref
