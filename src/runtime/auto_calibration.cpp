#include "runtime/auto_calibration.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/device_info.h"

namespace sacc {
namespace {

constexpr int kCacheVersion = 1;

struct ShippedCalibration {
  const char* arch;
  const char* device;
  const char* shape;
  const char* setting;
  int64_t break_even;
};

// Measured on an H200 with real prose: Qwen2.5-Coder-0.5B-Instruct with the default setting on 2026-12-04
// (bench/results/real_models_h200/2026-12-04-twelfth/d2/calibrate_qwen.log) and the previous default on
// 2026-12-02 (bench/results/real_models_h200/calibrate_qwen_0.95.log); SmolLM2-135M-Instruct with the default
// setting on 2026-12-04 (.../d2/calibrate_smollm2.log: sparse never beat dense up to its 8192-token window).
// On the CPU ("cpu": every host, whatever its cores or ISA), both models with the default setting on a 2-core
// AMD EPYC (Zen 4, AVX-512 VNNI and BF16: the bf16-product attention) on 2026-12-05
// (bench/results/cpu_attention_bf16/calibrate.log): sparse 1.03-1.04x at 3072 tokens, 0.98x at 2560,
// 1.07x / 1.17x at 8192 (Qwen / SmolLM2), 1.20x at 16384 (Qwen). With the fp32 AVX2 attention the same
// host measured 2560 for both (bench/results/cpu_sparse_prefill/calibrate_{qwen,smollm2}.log); between 2560
// and 4096 the two methods are within 4 % either way. The CPU's attention is a larger share of its prefill
// than a GPU's, so sparse pays from shorter prompts there. On an H100 (80GB HBM3), Qwen with the default
// setting on 2026-12-05 (bench/results/real_models_h200/2026-12-05-eighteenth/re/calibration_h100.json: 1.01x
// at 12800 tokens, 0.99x at 12288); before it was shipped, `auto` on an H100 fell back to the cost model and
// ran Qwen's 32000-token prompts dense (0.1535 s against 0.1092 s sparse, .../re/ttft_qwen.md).
constexpr ShippedCalibration kShipped[] = {
    {"sm_90", "NVIDIA H100 80GB HBM3", "layers 24, heads 14/2, head dim 64, hidden 896",
     "interval-slash:1000,256@0.95+block-cluster:512@0.99", 12800},
    {"sm_90", "NVIDIA H200", "layers 24, heads 14/2, head dim 64, hidden 896",
     "interval-slash:1000,256@0.95+block-cluster:512@0.99", 12288},
    {"sm_90", "NVIDIA H200", "layers 24, heads 14/2, head dim 64, hidden 896",
     "interval-slash:1000,6096@0.95", 12800},
    {"sm_90", "NVIDIA H200", "layers 30, heads 9/3, head dim 64, hidden 576",
     "interval-slash:1000,256@0.95+block-cluster:512@0.99", std::numeric_limits<int64_t>::max()},
    {"cpu", "cpu", "layers 24, heads 14/2, head dim 64, hidden 896",
     "interval-slash:1000,256@0.95+block-cluster:512@0.99", 3072},
    {"cpu", "cpu", "layers 30, heads 9/3, head dim 64, hidden 576",
     "interval-slash:1000,256@0.95+block-cluster:512@0.99", 3072},
};

nlohmann::json to_json(const Calibration& c) {
  nlohmann::json points = nlohmann::json::array();
  for (const CalibrationPoint& p : c.points)
    points.push_back({{"tokens", p.tokens}, {"dense_s", p.dense_seconds}, {"sparse_s", p.sparse_seconds}});
  return {{"device", c.key.device},     {"shape", c.key.shape}, {"setting", c.key.setting},
          {"break_even", c.break_even}, {"points", points},     {"date", c.date},
          {"commit", c.commit}};
}

Calibration from_json(const nlohmann::json& j) {
  Calibration c;
  c.key.device = j.at("device").get<std::string>();
  c.key.shape = j.at("shape").get<std::string>();
  c.key.setting = j.at("setting").get<std::string>();
  c.break_even = j.at("break_even").get<int64_t>();
  for (const nlohmann::json& p : j.at("points"))
    c.points.push_back(
        {p.at("tokens").get<int64_t>(), p.at("dense_s").get<double>(), p.at("sparse_s").get<double>()});
  c.date = j.value("date", "");
  c.commit = j.value("commit", "");
  return c;
}

// The whole cache: {"version": 1, "entries": [...]}; an absent file is an empty cache.
Result<nlohmann::json> read_cache(const std::string& path) {
  nlohmann::json cache = {{"version", kCacheVersion}, {"entries", nlohmann::json::array()}};
  std::ifstream in(path);
  if (!in) return cache;
  try {
    nlohmann::json parsed = nlohmann::json::parse(in);
    if (parsed.value("version", 0) != kCacheVersion || !parsed.contains("entries") ||
        !parsed["entries"].is_array())
      return make_error(StatusCode::CORRUPT_DATA,
                        "{}: not a calibration cache of version {}; delete it and run `sacc calibrate`", path,
                        kCacheVersion);
    return parsed;
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: {}; delete it and run `sacc calibrate`", path, e.what());
  }
}

}  // namespace

std::string CalibrationKey::id() const {
  return device + " | " + shape + " | " + setting;
}

CalibrationKey calibration_key(const ModelConfig& config, const Device& device, const std::string& setting) {
  CalibrationKey key;
  key.device = "cpu";
  key.arch = "cpu";
  if (!device.is_cpu()) {
    Result<GpuInfo> gpu = query_gpu(device.index);
    key.device = gpu ? gpu->name : device.to_string();
    key.arch = gpu ? fmt::format("sm_{}{}", gpu->sm_major, gpu->sm_minor) : "";
  }
  key.shape = fmt::format("layers {}, heads {}/{}, head dim {}, hidden {}", config.num_layers,
                          config.num_heads, config.num_kv_heads, config.head_dim, config.hidden);
  key.setting = setting;
  return key;
}

int64_t break_even_from_points(const std::vector<CalibrationPoint>& points) {
  int64_t from = std::numeric_limits<int64_t>::max();
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    if (it->sparse_seconds >= it->dense_seconds) break;
    from = it->tokens;
  }
  return from;
}

std::string calibration_cache_path() {
  std::filesystem::path dir;
  if (const char* env = std::getenv("SACC_CACHE_DIR"); env && *env) {
    dir = env;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    dir = std::filesystem::path(xdg) / "sacc";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::filesystem::path(home) / ".cache" / "sacc";
  } else {
    dir = ".sacc-cache";
  }
  return (dir / "calibration.json").string();
}

Result<std::optional<Calibration>> find_calibration(const CalibrationKey& key) {
  const std::string path = calibration_cache_path();
  SACC_ASSIGN_OR_RETURN(nlohmann::json cache, read_cache(path));
  try {
    for (const nlohmann::json& entry : cache["entries"]) {
      Calibration c = from_json(entry);
      if (c.key.id() == key.id()) return std::optional<Calibration>(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: {}; delete it and run `sacc calibrate`", path, e.what());
  }
  return std::optional<Calibration>();
}

std::optional<ShippedBreakEven> shipped_break_even(const CalibrationKey& key) {
  std::optional<ShippedBreakEven> same_arch;
  for (const ShippedCalibration& entry : kShipped) {
    if (key.shape != entry.shape || key.setting != entry.setting) continue;
    if (key.device == entry.device) return ShippedBreakEven{entry.break_even, entry.device, true};
    if (!key.arch.empty() && key.arch == entry.arch &&
        (!same_arch || entry.break_even > same_arch->break_even))
      same_arch = ShippedBreakEven{entry.break_even, entry.device, false};
  }
  return same_arch;
}

Status store_calibration(const Calibration& calibration) {
  const std::string path = calibration_cache_path();
  SACC_ASSIGN_OR_RETURN(nlohmann::json cache, read_cache(path));
  nlohmann::json entries = nlohmann::json::array();
  for (const nlohmann::json& entry : cache["entries"]) {
    const bool same = entry.value("device", "") == calibration.key.device &&
                      entry.value("shape", "") == calibration.key.shape &&
                      entry.value("setting", "") == calibration.key.setting;
    if (!same) entries.push_back(entry);
  }
  entries.push_back(to_json(calibration));
  cache["entries"] = entries;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    if (!out || !(out << cache.dump(1) << "\n"))
      return make_error(StatusCode::IO_ERROR, "cannot write the calibration cache {}", temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    return make_error(StatusCode::IO_ERROR, "cannot replace the calibration cache {}", path);
  return Status::ok();
}

}  // namespace sacc
