// TMA tensor maps of one flash launch (Q, K, V), passed by value as a __grid_constant__ kernel parameter.
#pragma once

#include <cuda.h>

namespace sacc::flash {

struct FlashTmaMaps {
  CUtensorMap q;  // [L - q_begin, Hq, d] bf16, box 64 columns x 1 head x 64 rows, 128-byte swizzle
  CUtensorMap k;  // [L, Hkv, d] bf16, box 64 columns x 1 head x kBlockN rows, 128-byte swizzle
  CUtensorMap v;  // same as k
};

}  // namespace sacc::flash
