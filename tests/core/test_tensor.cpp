#include <gtest/gtest.h>

#include "core/tensor.h"

namespace sacc {
namespace {

TEST(Tensor, ContiguousStridesAndConversion) {
  Result<Tensor> t = Tensor::zeros(DType::F32, {2, 3, 4});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->numel(), 24);
  EXPECT_EQ(t->view().strides[0], 12);
  EXPECT_EQ(t->view().strides[2], 1);
  EXPECT_TRUE(t->view().is_contiguous());
  t->set(5, 1.00390625f);  // 1 + 2^-8: a bf16 tie
  Result<Tensor> b = t->to(DType::BF16);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->get(5), 1.0f);
  EXPECT_EQ(b->nbytes(), 48u);
}

TEST(Shape, RejectsTooManyOrNegativeDims) {
  EXPECT_FALSE(Shape::from_vector({1, 2, 3, 4, 5, 6, 7}).is_ok());
  EXPECT_FALSE(Shape::from_vector({4, -1}).is_ok());
  EXPECT_EQ(Shape::from_vector({4, 5})->to_string(), "[4, 5]");
}

TEST(Bytes, ParseAndFormat) {
  EXPECT_EQ(parse_bytes("24GiB").value(), 24ull << 30);
  EXPECT_EQ(parse_bytes("512MiB").value(), 512ull << 20);
  EXPECT_EQ(parse_bytes("100").value(), 100u);
  EXPECT_FALSE(parse_bytes("lots").is_ok());
  EXPECT_FALSE(parse_bytes("3parsecs").is_ok());
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
}

TEST(Device, Parse) {
  EXPECT_EQ(parse_device("cuda:1")->index, 1);
  EXPECT_TRUE(parse_device("cpu")->is_cpu());
  EXPECT_FALSE(parse_device("tpu").is_ok());
  EXPECT_FALSE(parse_device("cuda:x").is_ok());
}

}  // namespace
}  // namespace sacc
