// Results of `sacc eval ruler` and how they are shown: the stdout table, ruler.json, ruler.md and ruler.png.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "tools/sacc/ruler_tasks.h"

namespace sacc::cli {

// One attention setting's greedy answers to every prompt.
struct RulerSettingResult {
  std::string name;                  // "dense", a pattern string or config:FILE
  std::vector<std::string> answers;  // [prompts.size()]
  std::vector<double> scores;        // [prompts.size()], each in [0, 1]
  double seconds = 0.0;              // wall time of all its prompts
};

struct RulerRun {
  std::string model;
  std::string device;
  uint64_t seed = 0;
  int samples = 0;  // per task and length
  std::vector<int64_t> lengths;
  std::vector<RulerTask> tasks;
  std::vector<RulerSample> prompts;          // [lengths][tasks][samples], flattened in that order
  std::vector<RulerSettingResult> settings;  // dense first; the finished ones

  size_t prompt_index(size_t length, size_t task, size_t sample) const {
    return (length * tasks.size() + task) * static_cast<size_t>(samples) + sample;
  }
};

struct RulerCell {
  double accuracy_percent = 0.0;       // mean score
  double same_as_dense_percent = 0.0;  // answers identical to dense's, text for text
};

// The cell of one setting, length and task; task = tasks.size() averages over the tasks.
RulerCell ruler_cell(const RulerRun& run, size_t setting, size_t length, size_t task);

// Stdout table: a header naming the tasks, then a row per setting and length as it finishes.
std::string ruler_table_header(const RulerRun& run);
std::string ruler_table_row(const RulerRun& run, size_t setting, size_t length);

// ruler.json (every prompt with its answers and scores), ruler.md (a table per length) and ruler.png (the
// average accuracy against length, a line per setting) in `dir`. Only the plot may fail quietly: a missing
// gnuplot is a warning on stderr.
Status write_ruler_outputs(const RulerRun& run, const std::string& dir);

}  // namespace sacc::cli
