#include "attention/cpu/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace sacc {

int cpu_thread_count() {
  static const int count = [] {
    if (const char* env = std::getenv("SACC_THREADS")) {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return count;
}

void parallel_for(int64_t num_tasks, const std::function<void(int64_t task)>& body) {
  const int64_t workers = std::min<int64_t>(cpu_thread_count(), num_tasks);
  if (workers <= 1) {
    for (int64_t t = 0; t < num_tasks; ++t) body(t);
    return;
  }
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t t = next.fetch_add(1); t < num_tasks; t = next.fetch_add(1)) body(t);
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (int64_t i = 1; i < workers; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& th : threads) th.join();
}

}  // namespace sacc
