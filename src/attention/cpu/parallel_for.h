// The CPU paths' parallel loop over one persistent thread pool for the whole process: tasks [0, n) split
// dynamically over the pool's workers and the calling thread. No thread is created per loop.
#pragma once

#include <cstdint>
#include <functional>

namespace sacc {

// Threads parallel_for uses (the caller included): set_cpu_thread_count's value, else SACC_THREADS if set,
// else the hardware concurrency.
int cpu_thread_count();
// Fixes the thread count (e.g. --threads); the pool is rebuilt at its next use. n <= 0 restores the default.
void set_cpu_thread_count(int n);

// Runs body(task) for every task in [0, num_tasks); tasks are claimed one at a time, so uneven tasks (causal
// rows) balance. Runs inline when there is one task or one thread, and when called from inside a task.
void parallel_for(int64_t num_tasks, const std::function<void(int64_t task)>& body);

}  // namespace sacc
