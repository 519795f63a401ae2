#include "attention_bench_report.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace sacc::bench {
namespace {

std::string length_label(int64_t seq_len) {
  return seq_len % 1024 == 0 ? fmt::format("{}K", seq_len / 1024) : fmt::format("{}", seq_len);
}

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return make_error(StatusCode::IO_ERROR, "{}: cannot write (does the folder exist?)", path);
  return Status::ok();
}

}  // namespace

std::string markdown_table(const std::vector<Row>& rows, const std::string& shape) {
  std::string text =
      "| L | method | median ms | TFLOP/s | visited-tile TFLOP/s | density | est+index share | speedup vs "
      "cuDNN | "
      "workspace MiB | check |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const Row& r : rows) {
    if (r.shape != shape) continue;
    // Every timed row passed the small-shape oracle check; dense rows also the same-input comparison with
    // cuDNN.
    const std::string check =
        r.check_error >= 0.0 ? fmt::format("oracle ok; rel err {:.1e} vs cuDNN", r.check_error) : "oracle ok";
    if (r.status != "ok") {
      text += fmt::format("| {} | {} | — | — | — | — | — | — | — | {} |\n", length_label(r.seq_len),
                          method_name(r.method), r.status);
      continue;
    }
    const bool sparse = is_sparse(r.method);
    text += fmt::format(
        "| {} | {} | {:.3f} | {:.1f} | {} | {:.3f} | {} | {} | {:.0f} | {} |\n", length_label(r.seq_len),
        method_name(r.method), r.median_ms, r.tflops, sparse ? fmt::format("{:.1f}", r.visited_tflops) : "—",
        r.density, sparse ? fmt::format("{:.1f} %", 100.0 * r.estimation_share) : "—",
        r.speedup_vs_cudnn > 0.0 ? fmt::format("{:.2f}x", r.speedup_vs_cudnn) : "—", r.workspace_mib, check);
  }
  return text;
}

Status write_results(const std::string& stem, const RunInfo& info, const std::vector<BenchShape>& shapes,
                     const std::vector<Row>& rows) {
  std::string md = "# Attention benchmark\n\n";
  md += fmt::format(
      "* GPU: {} (driver {}, CUDA runtime {})\n* cuDNN: {}\n* commit: {}\n* date: {}\n* command: `{}`\n* "
      "inputs: "
      "{}\n\n",
      info.gpu, info.driver, info.cuda_runtime, info.cudnn, info.commit, info.date, info.command,
      info.inputs);
  md +=
      "Times are medians over repetitions (CUDA events, one warm-up, L2 flushed and inputs regenerated "
      "before each "
      "repetition). TFLOP/s counts causal dense FLOPs 4·Hq·d·L(L+1)/2 for every row, so a sparse row's "
      "figure is its "
      "effective throughput; visited-tile TFLOP/s counts only the tiles and columns the sparse kernel "
      "computed, over "
      "its run time without estimation. Density = computed tiles / causal tiles. Sparse rows include "
      "estimation and "
      "indexing (plan) in their time.\n\n";
  md += "## Correctness checks (CPU fp64 oracle, small shape)\n\n";
  for (const std::string& line : info.verification) md += "* " + line + "\n";
  for (const BenchShape& s : shapes) {
    md += fmt::format("\n## {}: {} query heads, {} KV heads, head dim {}\n\n", s.name, s.num_q_heads,
                      s.num_kv_heads, s.head_dim);
    md += markdown_table(rows, s.name);
    md += "\nPatterns:\n\n";
    for (const Row& r : rows) {
      if (r.shape == s.name && !r.pattern.empty()) {
        md += fmt::format("* {} {}: {}\n", length_label(r.seq_len), method_name(r.method), r.pattern);
      }
    }
  }

  nlohmann::json json;
  json["gpu"] = info.gpu;
  json["driver"] = info.driver;
  json["cuda_runtime"] = info.cuda_runtime;
  json["cudnn"] = info.cudnn;
  json["commit"] = info.commit;
  json["date"] = info.date;
  json["command"] = info.command;
  json["inputs"] = info.inputs;
  json["verification"] = info.verification;
  for (const BenchShape& s : shapes) {
    json["shapes"].push_back({{"name", s.name},
                              {"num_q_heads", s.num_q_heads},
                              {"num_kv_heads", s.num_kv_heads},
                              {"head_dim", s.head_dim}});
  }
  json["rows"] = nlohmann::json::array();
  for (const Row& r : rows) {
    json["rows"].push_back({{"shape", r.shape},
                            {"seq_len", r.seq_len},
                            {"method", method_name(r.method)},
                            {"pattern", r.pattern},
                            {"status", r.status},
                            {"median_ms", r.median_ms},
                            {"median_plan_ms", r.median_plan_ms},
                            {"total_ms", r.total_ms},
                            {"plan_ms", r.plan_ms},
                            {"tflops", r.tflops},
                            {"visited_tflops", r.visited_tflops},
                            {"density", r.density},
                            {"estimation_share", r.estimation_share},
                            {"speedup_vs_cudnn", r.speedup_vs_cudnn},
                            {"check_rel_error_vs_cudnn", r.check_error},
                            {"workspace_mib", r.workspace_mib}});
  }
  SACC_RETURN_IF_ERROR(write_file(stem + ".md", md));
  return write_file(stem + ".json", json.dump(2) + "\n");
}

}  // namespace sacc::bench
