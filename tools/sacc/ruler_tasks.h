// RULER-style long-context tasks (after Hsieh et al., "RULER: What's the Real Context Size of Your
// Long-Context Language Models?", 2024): synthetic prompts of a chosen token length whose answers are known,
// built deterministically from a seed so that every attention setting reads the same prompts.
//
// niah_single       one needle "The special magic number for <key> is <7 digits>." in prose; asked back
// niah_multikey     four needles with different keys in prose; one key is asked
// niah_multivalue   four needles with one key and four numbers; all four are asked
// niah_multiquery   six needles with different keys; four keys are asked at once
// kv_retrieval      a JSON object of random UUID keys and values instead of prose; one key's value is asked
// variable_tracking a chain VAR A = 12345, VAR B = VAR A, ... (five names) and a distractor chain, hidden in
//                   prose; every name that holds the value is asked
// common_words      a list of words in which ten words occur many times and the rest once (twice when the
//                   prose runs out of words); the ten are asked
//
// Scoring: an expected string counts as found when it occurs in the answer as a whole token (no letter or
// digit right before or after it). common_words scores the share of the ten words found (case-insensitive,
// as RULER's partial credit); every other task scores 1 only when all expected strings are found
// (case-sensitive: numbers, UUIDs and variable names are copied, not paraphrased).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/tokenizer.h"

namespace sacc::cli {

enum class RulerTask {
  NIAH_SINGLE,
  NIAH_MULTIKEY,
  NIAH_MULTIVALUE,
  NIAH_MULTIQUERY,
  KV_RETRIEVAL,
  VARIABLE_TRACKING,
  COMMON_WORDS,
};

std::span<const RulerTask> all_ruler_tasks();  // in the order above
std::string_view ruler_task_name(RulerTask task);
// "all" or a comma-separated list of task names; an unknown name is an error that lists the valid ones.
Result<std::vector<RulerTask>> parse_ruler_tasks(const std::string& text);
// Greedy tokens a task's answer needs: its expected strings spelled out with room for a short sentence.
int64_t ruler_answer_tokens(RulerTask task);

// What every prompt is built from, prepared once per model: the prose tokenized once, and the prose's
// distinct words (common_words' vocabulary) with the tokens each takes after a space.
struct RulerSource {
  std::vector<int32_t> prose_ids;    // the haystack prose, tokenized once
  std::vector<std::string> words;    // distinct lower-case words of 5-12 letters, sorted
  std::vector<int32_t> word_tokens;  // [words.size()]: tokens of " " + word
};

Result<RulerSource> prepare_ruler_source(const Tokenizer& tok, const std::string& prose);

struct RulerSample {
  RulerTask task = RulerTask::NIAH_SINGLE;
  int64_t length = 0;  // requested prompt tokens
  uint64_t seed = 0;
  // The chat-formatted prompt: instruction, context, question, then the assistant's turn opened with an
  // answer prefix ("The special magic number for amber-falcon is"). ids.size() <= length and, from a few
  // hundred tokens on, >= 0.8 * length (kv_retrieval adds whole pairs of ~55 tokens; the others fill to a
  // few tokens).
  std::vector<int32_t> ids;
  std::string question;               // the question asked, for reports
  std::vector<std::string> expected;  // the strings a correct answer holds
};

// A sample of `task` whose prompt takes at most `length` tokens; an error when `length` leaves too little
// room beside the question and the chat template.
Result<RulerSample> make_ruler_sample(const Tokenizer& tok, const RulerSource& source, RulerTask task,
                                      int64_t length, uint64_t seed);

// Score of an answer in [0, 1] (see the scoring rule at the top of this file).
double score_ruler_answer(RulerTask task, std::span<const std::string> expected, std::string_view answer);

}  // namespace sacc::cli
