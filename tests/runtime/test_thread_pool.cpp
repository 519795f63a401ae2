// The persistent pool behind parallel_for: every task runs once, nested loops run inline, the thread count
// can change between loops.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "attention/cpu/parallel_for.h"

namespace sacc {
namespace {

TEST(ThreadPool, RunsEveryTaskOnceAcrossManyLoopsAndThreadCounts) {
  for (int threads : {1, 2, 3, 4}) {
    set_cpu_thread_count(threads);
    EXPECT_EQ(cpu_thread_count(), threads);
    for (int loop = 0; loop < 200; ++loop) {
      const int64_t n = loop % 37 + 1;
      std::vector<std::atomic<int>> hits(n);
      parallel_for(n, [&](int64_t t) { hits[t].fetch_add(1); });
      for (int64_t t = 0; t < n; ++t) ASSERT_EQ(hits[t].load(), 1) << "threads " << threads << " task " << t;
    }
  }
  set_cpu_thread_count(0);
}

TEST(ThreadPool, NestedLoopsRunInline) {
  set_cpu_thread_count(2);
  std::atomic<int> total{0};
  parallel_for(8, [&](int64_t) { parallel_for(5, [&](int64_t) { total.fetch_add(1); }); });
  EXPECT_EQ(total.load(), 40);
  set_cpu_thread_count(0);
}

}  // namespace
}  // namespace sacc
