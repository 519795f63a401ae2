// The measured side of --attention auto: from which prompt length sparse prefill beats dense prefill on THIS
// device, for one model shape and one sparse setting. `sacc calibrate` measures whole prefills of both at a
// ladder of lengths and stores the result in a small JSON cache; configure_attention() reads it back. Without
// an entry for the key, auto takes a measurement the project ships (shipped_break_even), else the tile cost
// model (attention_policy.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "model/model_config.h"

namespace sacc {

// What a measurement is valid for. Linear layers cost the same in both prefills, so the break-even depends on
// the device, the attention shape and the layer count, and on the sparse setting (its budgets and
// estimation).
struct CalibrationKey {
  std::string device;   // "NVIDIA H200", or "cpu"
  std::string shape;    // "layers 24, heads 14/2, head dim 64, hidden 896"
  std::string setting;  // the sparse setting: a pattern string, or "config:<file name>"
  // "sm_90" for a GPU, "cpu": not part of id(). Where the project shipped no measurement for this device, one
  // of another GPU of the same architecture stands in (shipped_break_even).
  std::string arch;

  std::string id() const;  // one line joining device, shape and setting, the cache's lookup key
};

CalibrationKey calibration_key(const ModelConfig& config, const Device& device, const std::string& setting);

struct CalibrationPoint {
  int64_t tokens = 0;
  double dense_seconds = 0.0;   // median prefill time
  double sparse_seconds = 0.0;  // median prefill time, plan included
};

struct Calibration {
  CalibrationKey key;
  std::vector<CalibrationPoint> points;  // ascending lengths
  int64_t break_even = 0;                // prompts of at least this many tokens run sparse
  std::string date, commit;
};

// The decision rule, in one place: the shortest measured length from which sparse is faster at that length
// and every longer measured one; INT64_MAX when sparse never wins (or wins only below a longer loss).
int64_t break_even_from_points(const std::vector<CalibrationPoint>& points);

// $SACC_CACHE_DIR, else $XDG_CACHE_HOME/sacc, else $HOME/.cache/sacc; the file is calibration.json there.
std::string calibration_cache_path();

// The entry for `key`, or nullopt when the cache or the entry is absent. A cache that cannot be parsed is
// reported as an error naming the file (delete it or run `sacc calibrate` again).
Result<std::optional<Calibration>> find_calibration(const CalibrationKey& key);

// A break-even the project measured with `sacc calibrate` and ships (bench/results/real_models_h200.md).
struct ShippedBreakEven {
  int64_t break_even = 0;
  std::string device;  // the GPU (or "cpu") it was measured on
  bool this_device = true;
};

// For keys a user has not calibrated yet: the measurement of key.device for this shape and setting; else,
// when key.arch names an architecture, the largest break-even measured on other GPUs of that architecture for
// them (Hopper GPUs run the same kernels: Qwen's default on the H100 and the H200 broke even at 12800 and
// 12288 tokens); nullopt for any other key.
std::optional<ShippedBreakEven> shipped_break_even(const CalibrationKey& key);

// Adds or replaces the entry for `calibration.key` (the file is rewritten whole, through a temporary file).
Status store_calibration(const Calibration& calibration);

}  // namespace sacc
