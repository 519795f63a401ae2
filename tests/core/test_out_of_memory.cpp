// core/out_of_memory.h: a failed host allocation becomes an OUT_OF_MEMORY Status naming what, how many bytes
// and where; the memory plan is attached once, and only to out-of-memory statuses.
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <vector>

#include "address_sanitizer.h"
#include "core/out_of_memory.h"

namespace sacc {
namespace {

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(OutOfMemory, BadAllocBecomesStatusNamingWhatAndBytes) {
  const Status s = guard_host_allocation("KV cache for 9 tokens", 3ull << 30, [] { throw std::bad_alloc(); });
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_TRUE(contains(s.message(), "KV cache for 9 tokens: cannot allocate 3.00 GiB on the host"))
      << s.message();
}

TEST(OutOfMemory, LengthErrorBecomesStatus) {
  const Status s = guard_host_allocation("scratch", 0, [] {
    std::vector<int> v;
    v.resize(v.max_size() + 1ull);  // std::length_error: more elements than the vector can address
  });
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY) << s.to_string();
  EXPECT_TRUE(contains(s.message(), "scratch: cannot allocate on the host")) << s.message();
}

TEST(OutOfMemory, ImpossibleAllocationIsCaughtNotFatal) {
  if (test::kUnderAddressSanitizer) GTEST_SKIP() << "ASan aborts on an impossible allocation";
  // 2^61 bytes is past any address space, so operator new fails without touching memory.
  const Status s = guard_host_allocation("huge buffer", 1ull << 61, [] {
    std::vector<char> v;
    v.reserve(1ull << 61);
  });
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY) << s.to_string();
}

TEST(OutOfMemory, BodyResultPassesThrough) {
  EXPECT_TRUE(guard_host_allocation("x", 1, [] {}).is_ok());
  const Status bad = guard_host_allocation("x", 1, [] { return Status(StatusCode::IO_ERROR, "disk"); });
  EXPECT_EQ(bad.code(), StatusCode::IO_ERROR);
  const Result<int> value = guard_host_allocation("x", 1, [] { return Result<int>(7); });
  ASSERT_TRUE(value.is_ok());
  EXPECT_EQ(*value, 7);
  const Result<int> failed = guard_host_allocation("x", 1, []() -> Result<int> { throw std::bad_alloc(); });
  EXPECT_EQ(failed.status().code(), StatusCode::OUT_OF_MEMORY);
}

TEST(OutOfMemory, DeviceMessageNamesDeviceAndWhatIsLeft) {
  const Status s = allocation_failed("hidden states", 2ull << 20, "cuda:1", 1ull << 20, "out of memory");
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_EQ(s.message(),
            "hidden states: cannot allocate 2.00 MiB on cuda:1 (1.00 MiB available): out of memory");
}

TEST(OutOfMemory, PlanIsAttachedOnceAndOnlyToOutOfMemory) {
  const std::string plan = "memory plan for 8 tokens on cpu\n  weights  1 MiB\n";
  const Status oom = allocation_failed("KV cache", 1024, "the host", 0);
  const Status with_plan = attach_memory_plan(oom, plan);
  EXPECT_EQ(with_plan.code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_EQ(with_plan.message(),
            "KV cache: cannot allocate 1.00 KiB on the host\nmemory plan for 8 tokens on "
            "cpu\n  weights  1 MiB");
  EXPECT_EQ(attach_memory_plan(with_plan, plan).message(), with_plan.message());
  const Status other(StatusCode::INVALID_ARGUMENT, "bad flag");
  EXPECT_EQ(attach_memory_plan(other, plan).message(), "bad flag");
}

}  // namespace
}  // namespace sacc
