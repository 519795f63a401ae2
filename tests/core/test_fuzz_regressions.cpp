// Inputs that crashed a parser under fuzz/ (scripts/fuzz.sh), kept as regression tests: each must now give a
// clear error.
#include <gtest/gtest.h>

#include <string>

#include "core/tensor.h"

namespace sacc {
namespace {

// fuzz_size: a size past 2^64 bytes was converted to uint64_t (undefined behaviour, UBSan
// float-cast-overflow).
TEST(FuzzRegressions, SizeBeyondUint64IsAnError) {
  for (const std::string text : {"85444444444444444444442GiB", "1e300", "16EiB", "inf", "nan", "nanGiB"}) {
    const Result<uint64_t> bytes = parse_bytes(text);
    ASSERT_FALSE(bytes.is_ok()) << text;
    EXPECT_EQ(bytes.status().code(), StatusCode::INVALID_ARGUMENT) << text;
  }
  EXPECT_EQ(parse_bytes("15.5TiB").value(), static_cast<uint64_t>(15.5 * 1024 * 1024 * 1024 * 1024));
}

}  // namespace
}  // namespace sacc
