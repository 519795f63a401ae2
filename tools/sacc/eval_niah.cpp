// `sacc eval niah`: needle in a haystack. A sentence carrying a random 7-digit number is inserted at 11
// depths (0 %, 10 %, ..., 100 %) into real prose cut to each length; the model is asked for the number and
// its greedy answer is scored by exact match (the 7 digits appear in the answer). One grid per attention
// setting.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "tools/sacc/commands.h"
#include "tools/sacc/eval_common.h"
#include "tools/sacc/eval_niah.h"

namespace sacc::cli {
namespace {

constexpr int kDepths = 11;
// Small models spell the answer out ("The special magic number mentioned in the text is 7 8 2 ...") and
// tokenize digits one by one: room for the sentence and all seven digits.
constexpr int64_t kAnswerTokens = 32;

struct NiahPrompt {
  std::vector<int32_t> ids;
  std::string number;
};

// Prose cut to about `length` prompt tokens with the needle at `depth` (0..1) of the haystack.
Result<NiahPrompt> make_prompt(const Tokenizer& tok, const std::vector<int32_t>& prose_ids, int64_t length,
                               double depth, uint64_t seed) {
  std::mt19937_64 rng(seed);
  NiahPrompt prompt;
  prompt.number = std::to_string(1000000 + static_cast<int64_t>(rng() % 9000000));
  const std::string needle = " The special magic number is " + prompt.number + ". ";
  const std::string question =
      "\n\nWhat is the special magic number mentioned in the text above? Reply with the number only.";
  // Room for the needle, the question and the chat template's own tokens.
  const int64_t overhead = static_cast<int64_t>(tok.encode(needle + question, false).size()) + 40;
  const int64_t haystack = std::min<int64_t>(length - overhead, static_cast<int64_t>(prose_ids.size()));
  if (haystack < 16) {
    return make_error(StatusCode::INVALID_ARGUMENT, "length {} leaves no room for a haystack", length);
  }
  const int64_t at = static_cast<int64_t>(depth * static_cast<double>(haystack));
  const std::span<const int32_t> all(prose_ids.data(), static_cast<size_t>(haystack));
  const std::string text = tok.decode(all.subspan(0, at)) + needle + tok.decode(all.subspan(at)) + question;
  const std::vector<ChatMessage> messages{{"user", text}};
  SACC_ASSIGN_OR_RETURN(prompt.ids, tok.encode_chat(messages, true));
  return prompt;
}

// One heat map per setting: niah_<setting>.png.dat holds a row per length and a column per depth; the plot
// itself is optional (plot_or_warn).
Status write_heatmap(const std::string& path_png, const nlohmann::json& grid, const std::string& title) {
  const std::string data_path = path_png + ".dat";
  std::ofstream data(data_path);
  for (const auto& row : grid["scores"]) {
    for (size_t d = 0; d < row.size(); ++d) data << (d ? " " : "") << row[d].get<int>();
    data << "\n";
  }
  if (!data.flush()) return make_error(StatusCode::IO_ERROR, "cannot write {}", data_path);
  std::ostringstream script;
  script << "set terminal pngcairo size 900,500 noenhanced\nset output '" << path_png << "'\n"
         << "set title '" << title << "'\nset xlabel 'needle depth (%)'\nset ylabel 'prompt tokens'\n"
         << "set cbrange [0:1]\nset palette defined (0 '#d73027', 1 '#1a9850')\nunset colorbox\n"
         << "set xtics (";
  for (int d = 0; d < kDepths; ++d) script << (d ? ", " : "") << "'" << d * 10 << "' " << d;
  script << ")\nset ytics (";
  for (size_t i = 0; i < grid["lengths"].size(); ++i) {
    script << (i ? ", " : "") << "'" << grid["lengths"][i].get<int64_t>() << "' " << i;
  }
  script << ")\nplot '" << data_path << "' matrix with image notitle\n";
  plot_or_warn(script.str(), path_png);
  return Status::ok();
}

}  // namespace

int run_eval_niah(const NiahArgs& a) {
  Result<EvalModel> eval = load_eval_model(a.model, a.device, true, a.linear);
  if (!eval) return report_error(eval.status());
  Result<std::string> prose = load_prose(a.text_path);
  if (!prose) return report_error(prose.status());
  const Tokenizer& tok = *eval->model.maybe_tokenizer;
  const std::vector<int32_t> prose_ids = tok.encode(*prose, false);
  std::vector<int64_t> lengths;
  for (int64_t length : a.lengths) {
    if (length > eval->model.weights.config.max_context) {
      std::fprintf(stderr, "niah: skipping length %lld (model context %lld)\n",
                   static_cast<long long>(length),
                   static_cast<long long>(eval->model.weights.config.max_context));
      continue;
    }
    lengths.push_back(length);
  }
  if (lengths.empty())
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "no length fits the model"));

  std::vector<std::string> settings{"dense"};
  for (const std::string& s : split_settings(a.sparse)) settings.push_back(s);
  nlohmann::json out;
  out["model"] = a.model;
  out["device"] = eval->device.to_string();
  out["depths_percent"] = nlohmann::json::array();
  for (int d = 0; d < kDepths; ++d) out["depths_percent"].push_back(d * 10);
  out["grids"] = nlohmann::json::array();
  for (const std::string& setting : settings) {
    BackendOptions options;
    options.show_progress = false;
    Result<std::unique_ptr<Backend>> backend = make_setting_backend(*eval, setting, options);
    if (!backend) return report_error(backend.status().with_context("setting '" + setting + "'"));
    nlohmann::json grid;
    grid["setting"] = setting;
    grid["lengths"] = lengths;
    grid["scores"] = nlohmann::json::array();
    grid["answers"] = nlohmann::json::array();
    int passed = 0, total = 0;
    for (int64_t length : lengths) {
      nlohmann::json scores = nlohmann::json::array(), answers = nlohmann::json::array();
      for (int d = 0; d < kDepths; ++d) {
        Result<NiahPrompt> prompt = make_prompt(tok, prose_ids, length, d / 10.0, a.seed + 131 * length + d);
        if (!prompt) return report_error(prompt.status());
        Result<std::string> answer = greedy_continuation(**backend, *eval, prompt->ids, kAnswerTokens);
        if (!answer) return report_error(answer.status().with_context("setting '" + setting + "'"));
        const bool hit = answer->find(prompt->number) != std::string::npos;
        scores.push_back(hit ? 1 : 0);
        answers.push_back(
            {{"expected", prompt->number}, {"answer", *answer}, {"tokens", prompt->ids.size()}});
        passed += hit;
        ++total;
        std::fprintf(stderr, "niah: %-28s len %6lld depth %3d%%: %s\n", setting.c_str(),
                     static_cast<long long>(length), d * 10, hit ? "pass" : "fail");
      }
      grid["scores"].push_back(scores);
      grid["answers"].push_back(answers);
    }
    grid["passed"] = passed;
    grid["total"] = total;
    std::printf("niah %-30s %3d / %3d passed\n", setting.c_str(), passed, total);
    out["grids"].push_back(grid);
  }
  // Sparse against dense, cell by cell: the target is no cell that dense passes and sparse fails.
  const nlohmann::json& dense = out["grids"][0]["scores"];
  for (size_t g = 1; g < out["grids"].size(); ++g) {
    int lost = 0;
    const nlohmann::json& scores = out["grids"][g]["scores"];
    for (size_t i = 0; i < scores.size(); ++i) {
      for (size_t d = 0; d < scores[i].size(); ++d)
        lost += dense[i][d].get<int>() == 1 && scores[i][d].get<int>() == 0;
    }
    out["grids"][g]["cells_lost_vs_dense"] = lost;
    std::printf("niah %-30s cells dense passes but this fails: %d\n",
                out["grids"][g]["setting"].get<std::string>().c_str(), lost);
  }
  if (!a.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.out_dir, ec);
    std::ofstream file(a.out_dir + "/niah.json");
    if (!file || !(file << out.dump(1) << "\n")) {
      return report_error(make_error(StatusCode::IO_ERROR, "cannot write {}/niah.json", a.out_dir));
    }
    for (size_t g = 0; g < out["grids"].size(); ++g) {
      std::string name = out["grids"][g]["setting"].get<std::string>();
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      const Status s =
          write_heatmap(a.out_dir + "/niah_" + name + ".png", out["grids"][g],
                        "NIAH " + a.model + ": " + out["grids"][g]["setting"].get<std::string>());
      if (!s) return report_error(s);
    }
  }
  return 0;
}

}  // namespace sacc::cli
