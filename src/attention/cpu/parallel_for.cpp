#include "attention/cpu/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sacc {
namespace {

// Polls (about 0.1 ms) a worker spins for the next loop before sleeping: a decode step runs a few hundred
// short loops back to back, and a condition-variable wake-up costs tens of microseconds each. On a shared,
// oversubscribed machine a longer spin would only take time from the thread doing the work.
constexpr int kSpinPolls = 1 << 11;

constexpr uint64_t kClosed = 0xffffffffu;  // task index of a loop being set up: above any task count

thread_local bool tls_inside_task = false;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Tasks are claimed from one 64-bit word, (loop number << 32) | next task, by compare-and-swap: a worker that
// wakes late for a finished loop cannot take a task of the next one by mistake, and the caller waits only for
// the tasks to be done, never for every worker to check in (a descheduled worker costs nothing).
class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
      claim_.fetch_add(uint64_t{1} << 32);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int64_t num_tasks, const std::function<void(int64_t)>& body) {
    const uint64_t loop = (claim_.load(std::memory_order_relaxed) >> 32) + 1;
    // Closed first: a worker still holding the last loop's word fails its compare-and-swap from here on, so
    // it cannot pair that word with the new body and task count below.
    claim_.store((loop << 32) | kClosed);
    body_.store(&body, std::memory_order_release);
    num_tasks_.store(num_tasks, std::memory_order_release);
    done_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      claim_.store(loop << 32, std::memory_order_release);
    }
    wake_.notify_all();
    work(loop);
    for (int polls = 0; done_.load(std::memory_order_acquire) < num_tasks; ++polls) {
      if (polls < kSpinPolls) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  // Claims and runs tasks of loop `loop` until none is left.
  void work(uint64_t loop) {
    tls_inside_task = true;
    uint64_t word = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((word >> 32) != loop) break;
      const auto* body = body_.load(std::memory_order_acquire);
      const int64_t num_tasks = num_tasks_.load(std::memory_order_acquire);
      const int64_t task = static_cast<int64_t>(word & 0xffffffffu);
      if (task >= num_tasks) break;
      if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel)) continue;
      (*body)(task);
      done_.fetch_add(1, std::memory_order_acq_rel);
      word = claim_.load(std::memory_order_acquire);
    }
    tls_inside_task = false;
  }

  // A loop other than `seen` that is open (a loop being set up is still closed).
  bool new_loop(uint64_t seen) const {
    const uint64_t word = claim_.load(std::memory_order_acquire);
    return (word >> 32) != seen && (word & kClosed) != kClosed;
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      for (int polls = 0; !new_loop(seen) && polls < kSpinPolls; ++polls) cpu_relax();
      if (!new_loop(seen)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return new_loop(seen); });
      }
      if (stop_.load()) return;
      seen = claim_.load(std::memory_order_acquire) >> 32;
      work(seen);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<const std::function<void(int64_t)>*> body_{nullptr};
  std::atomic<int64_t> num_tasks_{0};
  std::atomic<bool> stop_{false};
};

std::mutex g_pool_mutex;  // guards the pool's creation and replacement, and serialises loops from threads
std::unique_ptr<ThreadPool> g_pool;
int g_requested_threads = 0;

// Read once: std::thread::hardware_concurrency() opens and reads a sysfs file, and parallel_for runs
// hundreds of times per decoded token.
int default_thread_count() {
  static const int threads = [] {
    if (const char* env = std::getenv("SACC_THREADS")) {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return threads;
}

}  // namespace

int cpu_thread_count() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  return g_requested_threads > 0 ? g_requested_threads : default_thread_count();
}

void set_cpu_thread_count(int n) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_requested_threads = std::max(0, n);
  g_pool.reset();
}

void parallel_for(int64_t num_tasks, const std::function<void(int64_t task)>& body) {
  if (num_tasks <= 0) return;
  if (num_tasks == 1 || tls_inside_task) {
    for (int64_t t = 0; t < num_tasks; ++t) body(t);
    return;
  }
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  const int threads = g_requested_threads > 0 ? g_requested_threads : default_thread_count();
  if (threads <= 1) {
    for (int64_t t = 0; t < num_tasks; ++t) body(t);
    return;
  }
  if (!g_pool || g_pool->threads() != threads) g_pool = std::make_unique<ThreadPool>(threads);
  g_pool->run(num_tasks, body);
}

}  // namespace sacc
