// warm_row_buckets (a server's start-up pass): it leaves the backend as it found it (every slot released, the
// next prefill's logits bit-identical to a fresh backend's) and rejects a row count below one.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "runtime/backend.h"
#include "runtime/backend_warmup.h"
#include "runtime/tiny_model.h"

namespace sacc {
namespace {

class BackendWarmup : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("warmup");
    test::write_hf_dir(test::make_tiny_weights(test::TinySpec{}), dir_, 1);
    Result<LlamaWeights> w = test::load_hf_dir(dir_);
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    weights_ = std::move(w).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Backend> backend(int slots) const {
    BackendOptions options;
    options.show_progress = false;
    Result<std::unique_ptr<Backend>> b = make_cpu_backend(weights_, options);
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    if (!b) return nullptr;
    EXPECT_TRUE((*b)->set_slot_count(slots).is_ok());
    return std::move(b).value();
  }

  std::string dir_;
  LlamaWeights weights_;
};

TEST_F(BackendWarmup, LeavesTheBackendAsAFreshOne) {
  const std::vector<int32_t> prompt = {5, 17, 3, 42, 8, 61, 29};
  std::vector<float> fresh_logits, warmed_logits;
  std::unique_ptr<Backend> fresh = backend(2), warmed = backend(2);
  ASSERT_TRUE(fresh && warmed);
  ASSERT_TRUE(fresh->reserve_slot(1, 16).is_ok());
  ASSERT_TRUE(fresh->prefill(1, prompt, fresh_logits).is_ok());

  // 12 rows: the buckets 1, 2, 4, 8 and 12 itself.
  const Status s = warm_row_buckets(*warmed, 12);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(warmed->position(0), 0);
  EXPECT_EQ(warmed->position(1), 0);
  EXPECT_EQ(warmed->slot_count(), 2);
  ASSERT_TRUE(warmed->reserve_slot(1, 16).is_ok());
  ASSERT_TRUE(warmed->prefill(1, prompt, warmed_logits).is_ok());
  ASSERT_EQ(warmed_logits.size(), fresh_logits.size());
  EXPECT_EQ(std::memcmp(warmed_logits.data(), fresh_logits.data(), fresh_logits.size() * sizeof(float)), 0);
}

TEST_F(BackendWarmup, RejectsNoRows) {
  std::unique_ptr<Backend> b = backend(1);
  ASSERT_TRUE(b);
  const Status s = warm_row_buckets(*b, 0);
  EXPECT_EQ(s.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.to_string().find("at least 1"), std::string::npos) << s.to_string();
}

}  // namespace
}  // namespace sacc
