#include "tools/sacc/bench_report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace sacc::cli {
namespace {

using Json = nlohmann::json;

std::vector<std::string> methods_of(const BenchReport& report) {
  std::vector<std::string> methods;
  for (const BenchCell& cell : report.cells) {
    if (std::find(methods.begin(), methods.end(), cell.method) == methods.end())
      methods.push_back(cell.method);
  }
  return methods;
}

std::vector<int64_t> contexts_of(const BenchReport& report) {
  std::set<int64_t> contexts;
  for (const BenchCell& cell : report.cells) contexts.insert(cell.ctx);
  return {contexts.begin(), contexts.end()};
}

const BenchCell* find_cell(const BenchReport& report, const std::string& method, int64_t ctx) {
  for (const BenchCell& cell : report.cells) {
    if (cell.method == method && cell.ctx == ctx) return &cell;
  }
  return nullptr;
}

std::string status_text(const BenchCell& cell) {
  return cell.status == "oom" ? "OOM" : "error";
}

}  // namespace

std::string render_markdown(const BenchReport& report) {
  const std::vector<std::string> methods = methods_of(report);
  const std::vector<int64_t> contexts = contexts_of(report);
  std::ostringstream out;
  for (const auto& [key, value] : report.meta) out << "- " << key << ": " << value << "\n";
  out << "\n**TTFT (s)**, median of the repetitions (OOM: out of memory)\n\n| ctx |";
  for (const std::string& m : methods) out << " " << m << " |";
  out << "\n| --- |";
  for (size_t i = 0; i < methods.size(); ++i) out << " --- |";
  out << "\n";
  for (int64_t ctx : contexts) {
    out << "| " << ctx << " |";
    for (const std::string& m : methods) {
      const BenchCell* cell = find_cell(report, m, ctx);
      if (!cell)
        out << " |";
      else if (cell->status != "ok")
        out << " " << status_text(*cell) << " |";
      else
        out << fmt::format(" {:.4f} |", cell->ttft_median_ms / 1000.0);
    }
    out << "\n";
  }
  // Speedup of every method against the HF baseline (hf-sdpa when present), where both ran.
  std::string baseline;
  for (const std::string& m : methods) {
    if (m == "hf-sdpa" || (baseline.empty() && m.rfind("hf-", 0) == 0)) baseline = m;
  }
  if (!baseline.empty()) {
    out << "\n**TTFT speedup against " << baseline << "** (its TTFT / the method's TTFT)\n\n| ctx |";
    for (const std::string& m : methods) out << " " << m << " |";
    out << "\n| --- |";
    for (size_t i = 0; i < methods.size(); ++i) out << " --- |";
    out << "\n";
    for (int64_t ctx : contexts) {
      const BenchCell* base = find_cell(report, baseline, ctx);
      out << "| " << ctx << " |";
      for (const std::string& m : methods) {
        const BenchCell* cell = find_cell(report, m, ctx);
        if (base && cell && base->status == "ok" && cell->status == "ok") {
          out << fmt::format(" {:.2f}x |", base->ttft_median_ms / cell->ttft_median_ms);
        } else {
          out << " - |";
        }
      }
      out << "\n";
    }
  }
  out << "\n**Peak memory (MiB)**: one row per device (a GPU, or on the CPU the tracked tensors and the "
         "process RSS "
         "high-water), then the total\n\n| ctx | device |";
  for (const std::string& m : methods) out << " " << m << " |";
  out << "\n| --- | --- |";
  for (size_t i = 0; i < methods.size(); ++i) out << " --- |";
  out << "\n";
  for (int64_t ctx : contexts) {
    std::vector<std::string> devices;
    for (const std::string& m : methods) {
      if (const BenchCell* cell = find_cell(report, m, ctx)) {
        for (const auto& [device, mib] : cell->peak_mib) {
          if (std::find(devices.begin(), devices.end(), device) == devices.end()) devices.push_back(device);
        }
      }
    }
    // GPU0, GPU1, ..., then the total (the paper's Table 2), whichever method listed a device first.
    std::stable_partition(devices.begin(), devices.end(), [](const std::string& d) { return d != "total"; });
    if (devices.empty()) devices.push_back("total");
    for (const std::string& device : devices) {
      out << "| " << ctx << " | " << device << " |";
      for (const std::string& m : methods) {
        const BenchCell* cell = find_cell(report, m, ctx);
        std::string text;
        if (cell && cell->status != "ok")
          text = status_text(*cell);
        else if (cell) {
          for (const auto& [name, mib] : cell->peak_mib) {
            if (name == device) text = fmt::format("{:.0f}", mib);
          }
        }
        out << " " << text << " |";
      }
      out << "\n";
    }
  }
  return out.str();
}

std::string render_csv(const BenchReport& report) {
  std::ostringstream out;
  out << "method,ctx,status,ttft_median_ms,ttft_min_ms,ttft_max_ms,prefill_tok_s,sparse_prefill,peak_total_"
         "mib\n";
  for (const BenchCell& cell : report.cells) {
    double total = 0.0;
    for (const auto& [name, mib] : cell.peak_mib) {
      if (name == "total") total = mib;
    }
    out << fmt::format("{},{},{},{:.3f},{:.3f},{:.3f},{:.1f},{},{:.0f}\n", cell.method, cell.ctx, cell.status,
                       cell.ttft_median_ms, cell.ttft_min_ms, cell.ttft_max_ms, cell.prefill_tok_s,
                       cell.sparse_prefill ? 1 : 0, total);
  }
  return out.str();
}

std::string render_json(const BenchReport& report) {
  Json root;
  Json meta = Json::object();
  for (const auto& [key, value] : report.meta) meta[key] = value;
  root["meta"] = meta;
  Json cells = Json::array();
  for (const BenchCell& cell : report.cells) {
    Json c;
    c["method"] = cell.method;
    c["ctx"] = cell.ctx;
    c["status"] = cell.status;
    if (!cell.error.empty()) c["error"] = cell.error;
    if (cell.status == "ok") {
      c["ttft_ms"] = {{"median", cell.ttft_median_ms}, {"min", cell.ttft_min_ms}, {"max", cell.ttft_max_ms}};
      c["prefill_tok_s"] = cell.prefill_tok_s;
      c["sparse_prefill"] = cell.sparse_prefill;
      c["attention_density"] = cell.attention_density;
      Json peak = Json::object();
      for (const auto& [name, mib] : cell.peak_mib) peak[name] = mib;
      c["peak_mib"] = peak;
    }
    cells.push_back(c);
  }
  root["cells"] = cells;
  return root.dump(1) + "\n";
}

Result<std::vector<BenchCell>> read_cells_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(StatusCode::NOT_FOUND, "--compare {}: cannot open", path);
  Json root = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object() || !root.contains("cells") || !root["cells"].is_array()) {
    return make_error(StatusCode::CORRUPT_DATA, "--compare {}: expected a JSON object with a \"cells\" list",
                      path);
  }
  std::vector<BenchCell> cells;
  for (const Json& c : root["cells"]) {
    if (!c.is_object() || !c.contains("method") || !c.contains("ctx")) {
      return make_error(StatusCode::CORRUPT_DATA, "--compare {}: a cell lacks \"method\" or \"ctx\"", path);
    }
    BenchCell cell;
    cell.method = c["method"].get<std::string>();
    cell.ctx = c["ctx"].get<int64_t>();
    cell.status = c.value("status", std::string("ok"));
    if (cell.status == "ok" && c.contains("ttft_ms")) {
      cell.ttft_median_ms = c["ttft_ms"].value("median", 0.0);
      cell.ttft_min_ms = c["ttft_ms"].value("min", 0.0);
      cell.ttft_max_ms = c["ttft_ms"].value("max", 0.0);
      cell.prefill_tok_s = c.value("prefill_tok_s", 0.0);
      if (c.contains("peak_mib") && c["peak_mib"].is_object()) {
        for (auto it = c["peak_mib"].begin(); it != c["peak_mib"].end(); ++it) {
          cell.peak_mib.emplace_back(it.key(), it.value().get<double>());
        }
      }
    }
    cells.push_back(cell);
  }
  return cells;
}

Status write_plots(const BenchReport& report, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(StatusCode::IO_ERROR, "--plot {}: cannot create the folder: {}", dir, ec.message());
  const std::vector<std::string> methods = methods_of(report);
  const std::vector<int64_t> contexts = contexts_of(report);
  // One data file per quantity: a column per method, '?' where a cell is missing or ran out of memory.
  auto write_table = [&](const std::string& name, bool memory) -> Status {
    std::ofstream out(dir + "/" + name);
    if (!out) return make_error(StatusCode::IO_ERROR, "--plot: cannot write {}/{}", dir, name);
    out << "ctx";
    for (const std::string& m : methods) out << " " << m;
    out << "\n";
    for (int64_t ctx : contexts) {
      out << ctx;
      for (const std::string& m : methods) {
        const BenchCell* cell = find_cell(report, m, ctx);
        double value = -1.0;
        if (cell && cell->status == "ok") {
          if (!memory) value = cell->ttft_median_ms / 1000.0;
          for (const auto& [device, mib] : cell->peak_mib) {
            if (memory && device == "total") value = mib / 1024.0;
          }
        }
        if (value < 0)
          out << " ?";
        else
          out << " " << value;
      }
      out << "\n";
    }
    return Status::ok();
  };
  SACC_RETURN_IF_ERROR(write_table("ttft.dat", false));
  SACC_RETURN_IF_ERROR(write_table("memory.dat", true));
  std::ofstream script(dir + "/plot.gp");
  if (!script) return make_error(StatusCode::IO_ERROR, "--plot: cannot write {}/plot.gp", dir);
  script << "set terminal pngcairo size 1000,650 noenhanced\nset datafile missing '?'\nset logscale x\n"
            "set key top left\nset grid\nset xlabel 'context length (tokens)'\n";
  auto plot = [&](const std::string& png, const std::string& dat, const std::string& ylabel) {
    script << "set output '" << dir << "/" << png << "'\nset ylabel '" << ylabel << "'\nplot ";
    for (size_t i = 0; i < methods.size(); ++i) {
      script << (i ? ", " : "") << "'" << dir << "/" << dat << "' using 1:" << i + 2
             << " with linespoints title '" << methods[i] << "'";
    }
    script << "\n";
  };
  plot("ttft.png", "ttft.dat", "TTFT (s)");
  plot("memory.png", "memory.dat", "peak GPU memory, all GPUs (GiB)");
  script.close();
  const std::string command = "gnuplot '" + dir + "/plot.gp'";
  if (std::system(command.c_str()) != 0) {
    return make_error(StatusCode::UNSUPPORTED,
                      "--plot: gnuplot failed or is missing (install gnuplot-nox); the data is in {}/*.dat",
                      dir);
  }
  return Status::ok();
}

}  // namespace sacc::cli
