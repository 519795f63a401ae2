// A minimal parallel loop for the CPU paths: tasks [0, n) split dynamically over worker threads.
#pragma once

#include <cstdint>
#include <functional>

namespace sacc {

// Worker threads used by parallel_for: SACC_THREADS if set, else the hardware concurrency.
int cpu_thread_count();

// Runs body(task) for every task in [0, num_tasks); tasks are claimed one at a time, so uneven tasks (causal
// rows) balance. Runs inline when there is one task or one thread.
void parallel_for(int64_t num_tasks, const std::function<void(int64_t task)>& body);

}  // namespace sacc
