// poly_exp2 (attention/cuda/poly_exp2.h), the FMA-pipe exponential of the flash kernels' softmax, through its
// host copy of the same arithmetic: relative error against std::exp2 over the whole range the softmax feeds
// it (scores minus the row maximum: [-126, 0], and a rounding step above 0), and the exact values the kernels
// rely on: 1 at 0, +0 for a masked (-inf) score and everything at or below -127.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "attention/cuda/poly_exp2.h"

namespace sacc::flash {
namespace {

// The cubic's largest relative error on [-0.5, 0.5] is 1.0e-4 in fp32 (its fit); 2^j is exact.
constexpr double kRelativeTolerance = 1.1e-4;

double relative_error(float x) {
  const double exact = std::exp2(static_cast<double>(x));
  return std::abs(static_cast<double>(poly_exp2(x)) / exact - 1.0);
}

TEST(PolyExp2, ExactAtZeroAndZeroForMaskedScores) {
  EXPECT_EQ(poly_exp2(0.0f), 1.0f);
  for (float x : {-std::numeric_limits<float>::infinity(), -127.0f, -200.0f, -1e30f}) {
    EXPECT_EQ(poly_exp2(x), 0.0f) << x;
    EXPECT_FALSE(std::signbit(poly_exp2(x))) << x;
  }
}

TEST(PolyExp2, WithinTheFitsErrorOverTheSoftmaxRange) {
  double worst = 0.0;
  float worst_x = 0.0f;
  // Every 1/4096 from -126 to 0 (j boundaries at half-integers included), then random points.
  for (int i = 0; i <= 126 * 4096; ++i) {
    const float x = -static_cast<float>(i) / 4096.0f;
    const double error = relative_error(x);
    if (error > worst) {
      worst = error;
      worst_x = x;
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-126.0f, 0.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = uniform(rng);
    const double error = relative_error(x);
    if (error > worst) {
      worst = error;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, kRelativeTolerance) << "at x = " << worst_x;
  EXPECT_GT(worst, 1e-6) << "the host copy should compute the cubic, not an exact exponential";
}

TEST(PolyExp2, SlightlyPositiveArgumentsStayNearOne) {
  // fmaf(s, scale, -max) may round a row's maximum a step above 0.
  for (float x : {1e-7f, 1e-6f, 1e-4f}) EXPECT_LE(relative_error(x), kRelativeTolerance) << x;
}

}  // namespace
}  // namespace sacc::flash
