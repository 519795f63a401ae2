#include "tools/sacc/ruler_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "tools/sacc/eval_common.h"

namespace sacc::cli {
namespace {

constexpr int kSettingWidth = 30;  // stdout table: the setting column

int task_width(RulerTask task) {
  return std::max<int>(static_cast<int>(ruler_task_name(task).size()), 6);
}

std::string markdown_cell(const std::string& text) {  // a '|' would end the cell
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string gnuplot_quoted(const std::string& text) {  // inside '...', a quote is doubled
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

nlohmann::json sample_json(const RulerRun& run, size_t length, size_t task, size_t sample) {
  const RulerSample& prompt = run.prompts[run.prompt_index(length, task, sample)];
  nlohmann::json out{{"task", std::string(ruler_task_name(prompt.task))},
                     {"length", prompt.length},
                     {"index", sample},
                     {"seed", prompt.seed},
                     {"tokens", prompt.ids.size()},
                     {"question", prompt.question},
                     {"expected", prompt.expected}};
  out["results"] = nlohmann::json::array();
  for (const RulerSettingResult& setting : run.settings) {
    const size_t i = run.prompt_index(length, task, sample);
    out["results"].push_back(
        {{"setting", setting.name}, {"answer", setting.answers[i]}, {"score", setting.scores[i]}});
  }
  return out;
}

nlohmann::json run_json(const RulerRun& run) {
  nlohmann::json out{{"model", run.model},
                     {"device", run.device},
                     {"seed", run.seed},
                     {"samples_per_task", run.samples},
                     {"lengths", run.lengths}};
  out["tasks"] = nlohmann::json::array();
  for (RulerTask task : run.tasks) out["tasks"].push_back(std::string(ruler_task_name(task)));
  out["settings"] = nlohmann::json::array();
  for (size_t s = 0; s < run.settings.size(); ++s) {
    nlohmann::json setting{{"name", run.settings[s].name}, {"seconds", run.settings[s].seconds}};
    setting["results"] = nlohmann::json::array();
    setting["averages"] = nlohmann::json::array();
    for (size_t l = 0; l < run.lengths.size(); ++l) {
      for (size_t t = 0; t <= run.tasks.size(); ++t) {
        const RulerCell cell = ruler_cell(run, s, l, t);
        nlohmann::json row{{"length", run.lengths[l]}, {"accuracy_percent", cell.accuracy_percent}};
        if (s > 0) row["same_as_dense_percent"] = cell.same_as_dense_percent;
        if (t < run.tasks.size()) {
          row["task"] = std::string(ruler_task_name(run.tasks[t]));
          setting["results"].push_back(row);
        } else {
          setting["averages"].push_back(row);
        }
      }
    }
    out["settings"].push_back(setting);
  }
  out["samples"] = nlohmann::json::array();
  for (size_t l = 0; l < run.lengths.size(); ++l) {
    for (size_t t = 0; t < run.tasks.size(); ++t) {
      for (size_t i = 0; i < static_cast<size_t>(run.samples); ++i)
        out["samples"].push_back(sample_json(run, l, t, i));
    }
  }
  return out;
}

std::string run_markdown(const RulerRun& run) {
  std::string md = fmt::format(
      "# RULER: {}\n\n"
      "Device {}, {} prompts per task and length (seed {}), the same prompts for every setting. "
      "Accuracy in percent: the mean score (common_words: the share of the ten words found; "
      "the other tasks: 1 when every expected string is found). "
      "*Same as dense*: answers identical to dense's, text for text.\n",
      run.model, run.device, run.samples, run.seed);
  for (size_t l = 0; l < run.lengths.size(); ++l) {
    md += fmt::format("\n## {} tokens\n\n| task |", run.lengths[l]);
    for (const RulerSettingResult& setting : run.settings)
      md += fmt::format(" {} |", markdown_cell(setting.name));
    md += "\n|---|";
    for (size_t s = 0; s < run.settings.size(); ++s) md += "---:|";
    md += "\n";
    for (size_t t = 0; t <= run.tasks.size(); ++t) {
      md += fmt::format("| {} |", t < run.tasks.size() ? ruler_task_name(run.tasks[t]) : "**average**");
      for (size_t s = 0; s < run.settings.size(); ++s) {
        md += fmt::format(" {:.1f} |", ruler_cell(run, s, l, t).accuracy_percent);
      }
      md += "\n";
    }
    md += "| same as dense |";
    for (size_t s = 0; s < run.settings.size(); ++s) {
      md += s == 0 ? " |"
                   : fmt::format(" {:.1f} |", ruler_cell(run, s, l, run.tasks.size()).same_as_dense_percent);
    }
    md += "\n";
  }
  md += "\nWall time:";
  for (const RulerSettingResult& setting : run.settings) {
    md += fmt::format(" {} {:.1f} s;", markdown_cell(setting.name), setting.seconds);
  }
  md.back() = '\n';
  return md;
}

// ruler.dat holds a row per length: the length, then each setting's average accuracy.
Status write_plot(const RulerRun& run, const std::string& dir) {
  const std::string data_path = dir + "/ruler.dat", png_path = dir + "/ruler.png";
  std::ofstream data(data_path);
  for (size_t l = 0; l < run.lengths.size(); ++l) {
    data << run.lengths[l];
    for (size_t s = 0; s < run.settings.size(); ++s)
      data << " " << ruler_cell(run, s, l, run.tasks.size()).accuracy_percent;
    data << "\n";
  }
  if (!data.flush()) return make_error(StatusCode::IO_ERROR, "cannot write {}", data_path);
  const auto [shortest, longest] = std::minmax_element(run.lengths.begin(), run.lengths.end());
  std::string script = fmt::format(
      "set terminal pngcairo size 900,500 noenhanced\nset output {}\nset title {}\n"
      "set xlabel 'prompt tokens'\nset ylabel 'accuracy (%), mean over {} tasks'\n"
      "set yrange [0:105]\nset logscale x 2\nset xrange [{}:{}]\n"
      "set grid\nset key bottom left\nset xtics (",
      gnuplot_quoted(png_path), gnuplot_quoted("RULER " + run.model), run.tasks.size(),
      static_cast<double>(*shortest) / 1.25, static_cast<double>(*longest) * 1.25);
  for (size_t l = 0; l < run.lengths.size(); ++l)
    script += fmt::format("{}{}", l ? ", " : "", run.lengths[l]);
  script += ")\nplot ";
  for (size_t s = 0; s < run.settings.size(); ++s) {
    script +=
        fmt::format("{}{} using 1:{} with linespoints linewidth 2 pointsize 1.5 title {}", s ? ", " : "",
                    gnuplot_quoted(data_path), s + 2, gnuplot_quoted(run.settings[s].name));
  }
  plot_or_warn(script + "\n", png_path);
  return Status::ok();
}

}  // namespace

RulerCell ruler_cell(const RulerRun& run, size_t setting, size_t length, size_t task) {
  const size_t first = task < run.tasks.size() ? task : 0;
  const size_t last = task < run.tasks.size() ? task + 1 : run.tasks.size();
  const RulerSettingResult& result = run.settings[setting];
  const RulerSettingResult& dense = run.settings[0];
  double score = 0.0, same = 0.0, count = 0.0;
  for (size_t t = first; t < last; ++t) {
    for (size_t i = 0; i < static_cast<size_t>(run.samples); ++i) {
      const size_t p = run.prompt_index(length, t, i);
      score += result.scores[p];
      same += result.answers[p] == dense.answers[p] ? 1.0 : 0.0;
      count += 1.0;
    }
  }
  return count > 0 ? RulerCell{100.0 * score / count, 100.0 * same / count} : RulerCell{};
}

std::string ruler_table_header(const RulerRun& run) {
  std::string line = fmt::format("ruler {:<{}} {:>7}", "setting", kSettingWidth, "tokens");
  for (RulerTask task : run.tasks) line += fmt::format(" {:>{}}", ruler_task_name(task), task_width(task));
  return line + "  average  same_as_dense\n";
}

std::string ruler_table_row(const RulerRun& run, size_t setting, size_t length) {
  std::string line =
      fmt::format("ruler {:<{}} {:>7}", run.settings[setting].name, kSettingWidth, run.lengths[length]);
  for (size_t t = 0; t < run.tasks.size(); ++t) {
    line += fmt::format(" {:>{}.1f}", ruler_cell(run, setting, length, t).accuracy_percent,
                        task_width(run.tasks[t]));
  }
  const RulerCell average = ruler_cell(run, setting, length, run.tasks.size());
  line += fmt::format("  {:>7.1f}", average.accuracy_percent);
  return line + (setting == 0 ? fmt::format("  {:>13}\n", "-")
                              : fmt::format("  {:>13.1f}\n", average.same_as_dense_percent));
}

Status write_ruler_outputs(const RulerRun& run, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(StatusCode::IO_ERROR, "cannot create --out folder {}: {}", dir, ec.message());
  std::ofstream json(dir + "/ruler.json");
  if (!json || !(json << run_json(run).dump(1) << "\n")) {
    return make_error(StatusCode::IO_ERROR, "cannot write {}/ruler.json", dir);
  }
  std::ofstream md(dir + "/ruler.md");
  if (!md || !(md << run_markdown(run)))
    return make_error(StatusCode::IO_ERROR, "cannot write {}/ruler.md", dir);
  return write_plot(run, dir);
}

}  // namespace sacc::cli
