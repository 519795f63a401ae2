#include "tools/sacc/linear_option.h"

#include <fmt/format.h>

#include <charconv>
#include <string>

#include "runtime/linear_mode.h"

namespace sacc::cli {

void add_linear_option(CLI::App* cmd, std::string& linear) {
  cmd->add_option("--linear", linear,
                  "linear layers: bf16, or fp8 (e4m3 weights with per-channel scales, per-token activation "
                  "scales; CUDA only) (default bf16)");
}

void add_chunk_option(CLI::App* cmd, int64_t& chunk) {
  cmd->add_option("--chunk", chunk,
                  fmt::format("prompt tokens per linear-layer chunk (default on a GPU: the most, a power of "
                              "two from {}, whose gate/up activations take at most {} MiB; {} on the CPU: "
                              "larger chunks cost memory)",
                              kGpuLinearChunk, kGpuChunkActivationBytes >> 20, kCpuLinearChunk))
      ->check(CLI::Validator(
          [](std::string& text) {
            int64_t rows = 0;
            const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), rows);
            if (error != std::errc() || end != text.data() + text.size() || rows < 1)
              return "must be a whole number of tokens >= 1, not '" + text + "'";
            return std::string();
          },
          "TOKENS"));
}

}  // namespace sacc::cli
