// Results of `sacc bench` (TTFT and memory against context length) and their renderings: Markdown laid out
// like the paper's Tables 1-2, CSV, JSON (the schema bench/hf_baseline.py writes too), and PNG plots via
// gnuplot.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace sacc::cli {

struct BenchCell {
  std::string method;  // "sacc-dense", "sacc-sparse", "hf-sdpa", ...
  int64_t ctx = 0;
  std::string status = "ok";  // "ok", "oom", "error"
  std::string error;          // message when status != ok
  double ttft_median_ms = 0, ttft_min_ms = 0, ttft_max_ms = 0;
  double prefill_tok_s = 0;
  bool sparse_prefill = false;
  double attention_density = 1.0;                        // GenerationMetrics::prefill_attention
  std::vector<std::pair<std::string, double>> peak_mib;  // per device ("gpu0", ...) then "total"
};

struct BenchReport {
  std::vector<std::pair<std::string, std::string>> meta;  // gpu, driver, commit, date, command, model, ...
  std::vector<BenchCell> cells;
};

std::string render_markdown(const BenchReport& report);
std::string render_csv(const BenchReport& report);
std::string render_json(const BenchReport& report);
// Reads cells (and nothing else) from a JSON file of the same schema, e.g. bench/hf_baseline.py's output.
Result<std::vector<BenchCell>> read_cells_json(const std::string& path);
// Writes ttft.dat / memory.dat / plot.gp into `dir` and runs gnuplot to make ttft.png and memory.png.
Status write_plots(const BenchReport& report, const std::string& dir);

}  // namespace sacc::cli
