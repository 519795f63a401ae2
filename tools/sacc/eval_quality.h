// `sacc eval ppl` and `sacc eval recall` (see eval_ppl.cpp, eval_recall.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/kernel_tile.h"

namespace sacc::cli {

struct PplArgs {
  std::string model;
  std::string device;
  std::string linear = "bf16";  // --linear
  std::string text_path;
  int64_t length = 4096;  // prompt tokens
  int64_t last = 1024;    // positions scored at the end of the prompt
  std::string sparse = "interval-slash:64,512;block-cluster:8";
  std::string out_path;  // JSON
};

struct RecallArgs {
  std::string model;
  std::string device;           // where the Q/K/V come from: cpu or cuda[:N] ("" = cuda when present)
  std::string linear = "bf16";  // --linear
  std::string text_path;
  int64_t length = 2048;
  std::vector<int> layers;  // empty: every fourth layer
  std::string sparse = "interval-slash:64,512;block-cluster:8;triangular:64,512";
  int block_q = kTileBlockQ;  // the kernel tile, so recall scores the index the kernels would run
  int block_k = kTileBlockK;
  std::string dump_qkv_dir;  // write layer_<i>.safetensors for the GPU checks
  std::string out_path;      // JSON
};

int run_eval_ppl(const PplArgs& args);
int run_eval_recall(const RecallArgs& args);

}  // namespace sacc::cli
