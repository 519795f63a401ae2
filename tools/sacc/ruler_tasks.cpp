#include "tools/sacc/ruler_tasks.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <random>
#include <set>
#include <sstream>

namespace sacc::cli {
namespace {

constexpr std::array<RulerTask, 7> kTasks{RulerTask::NIAH_SINGLE,     RulerTask::NIAH_MULTIKEY,
                                          RulerTask::NIAH_MULTIVALUE, RulerTask::NIAH_MULTIQUERY,
                                          RulerTask::KV_RETRIEVAL,    RulerTask::VARIABLE_TRACKING,
                                          RulerTask::COMMON_WORDS};
constexpr std::array<std::string_view, 7> kTaskNames{"niah_single",     "niah_multikey", "niah_multivalue",
                                                     "niah_multiquery", "kv_retrieval",  "variable_tracking",
                                                     "common_words"};

constexpr int kMultiKeyNeedles = 4;    // niah_multikey: the asked needle and three distractors
constexpr int kMultiValueNeedles = 4;  // niah_multivalue: values of the one key
constexpr int kMultiQueryNeedles = 6;  // niah_multiquery: needles placed ...
constexpr int kMultiQueryAsked = 4;    // ... and keys asked
constexpr int kChainVariables = 5;     // variable_tracking: one value passed through five names
constexpr int kCommonWords = 10;
// Tokens kept free between the measured overhead and the limit: pieces joined into one text can tokenize a
// little differently from the pieces counted apart. A prompt that still overshoots is rebuilt smaller.
constexpr int64_t kSlackTokens = 4;
constexpr int64_t kMinContextTokens = 48;  // below this a "long-context" task is not one

// Keys of the needles, "<adjective>-<noun>": 32 x 32 names that tokenize into a few common pieces.
constexpr std::array<std::string_view, 32> kAdjectives{
    "amber",  "brisk",  "calm",  "dusty", "eager", "faint", "gentle", "hollow", "icy",   "jolly", "keen",
    "lively", "mellow", "noble", "olive", "proud", "quiet", "rapid",  "silent", "tidy",  "urban", "vivid",
    "wary",   "young",  "zesty", "bold",  "crisp", "fuzzy", "grand",  "humble", "lucky", "misty"};
constexpr std::array<std::string_view, 32> kNouns{
    "anchor", "badger", "canyon",  "dragon",  "engine", "falcon",  "garden", "harbor",
    "island", "jacket", "kettle",  "lantern", "meadow", "orchard", "pepper", "quarry",
    "river",  "saddle", "tunnel",  "violin",  "walrus", "yacht",   "zebra",  "beacon",
    "candle", "desert", "feather", "glacier", "hammer", "igloo",   "ladder", "mirror"};
// Words an answer sentence about common words may hold on its own; never list entries, so that they cannot be
// "found" in a reply that merely talks about the list.
const std::set<std::string_view> kAnswerWords{
    "above", "about",   "after",    "again",      "appear", "appears", "below", "common",
    "count", "counted", "frequent", "frequently", "given",  "listed",  "occur", "occurs",
    "often", "other",   "their",    "there",      "these",  "those",   "times", "which",
    "words", "would",   "answer",   "following",  "number", "reply"};

// Deterministic on every standard library (std::shuffle and the distributions are not).
uint64_t draw(std::mt19937_64& rng, uint64_t n) {
  return rng() % n;
}
double draw_fraction(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}
template <typename T>
void shuffle(std::vector<T>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[draw(rng, i)]);
}

std::string draw_number(std::mt19937_64& rng, int digits) {
  uint64_t low = 1;
  for (int i = 1; i < digits; ++i) low *= 10;
  return std::to_string(low + draw(rng, 9 * low));
}

// `count` different values of `make`.
std::vector<std::string> draw_distinct(std::mt19937_64& rng, int count,
                                       const std::function<std::string(std::mt19937_64&)>& make) {
  std::vector<std::string> out;
  while (static_cast<int>(out.size()) < count) {
    std::string value = make(rng);
    if (std::find(out.begin(), out.end(), value) == out.end()) out.push_back(std::move(value));
  }
  return out;
}

std::string draw_key(std::mt19937_64& rng) {
  return std::string(kAdjectives[draw(rng, kAdjectives.size())]) + "-" +
         std::string(kNouns[draw(rng, kNouns.size())]);
}

std::string draw_uuid(std::mt19937_64& rng) {  // random hex, 8-4-4-4-12
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int group : {8, 4, 4, 4, 12}) {
    if (!out.empty()) out += '-';
    for (int i = 0; i < group; ++i) out += kHex[draw(rng, 16)];
  }
  return out;
}

std::string draw_variable(std::mt19937_64& rng) {  // five upper-case letters
  std::string out;
  for (int i = 0; i < 5; ++i) out += static_cast<char>('A' + draw(rng, 26));
  return out;
}

std::string join(std::span<const std::string> items, std::string_view separator, std::string_view last) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += i + 1 == items.size() ? last : separator;
    out += items[i];
  }
  return out;
}

int64_t count_tokens(const Tokenizer& tok, std::string_view text) {
  return static_cast<int64_t>(tok.encode(text, false).size());
}

// One task instance before its length is known: the texts around the context and the random choices, with a
// builder that makes the context for a token budget (called again with a smaller budget when the prompt
// overshoots, so it must draw the same choices each time).
struct TaskDraft {
  std::string instruction;    // opens the user's message
  std::string question;       // closes it
  std::string answer_prefix;  // opens the assistant's turn
  std::vector<std::string> expected;
  std::function<Result<std::string>(int64_t budget_tokens)> context;
};

// A sentence placed into prose at `depth` (0..1) of it.
struct Insert {
  double depth = 0.0;
  std::string text;
};

// About `budget` tokens of prose from token `start` on (wrapping around), with `inserts` placed in order of
// depth, each right after the first sentence end at or past its depth.
Result<std::string> prose_with_inserts(const Tokenizer& tok, const RulerSource& source, uint64_t start,
                                       std::vector<Insert> inserts, int64_t budget) {
  int64_t insert_tokens = 0;
  for (const Insert& insert : inserts) insert_tokens += count_tokens(tok, insert.text + " ");
  const int64_t prose_tokens = budget - insert_tokens;
  if (prose_tokens < kMinContextTokens) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "{} tokens of context cannot hold the task's {} tokens of sentences and some prose",
                      budget, insert_tokens);
  }
  const std::vector<int32_t>& all = source.prose_ids;
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(prose_tokens));
  for (int64_t i = 0; i < prose_tokens; ++i)
    ids.push_back(all[(start + static_cast<uint64_t>(i)) % all.size()]);
  std::string text = tok.decode(ids);
  // The window starts at a random token, likely mid-word: begin at the next line instead.
  if (const size_t line = text.find('\n'); line < 200) text.erase(0, line + 1);
  // Positions are found in the prose alone, then filled from the last, so that earlier ones stay valid;
  // inserts of equal position (or depth) keep their order.
  std::stable_sort(inserts.begin(), inserts.end(),
                   [](const Insert& a, const Insert& b) { return a.depth < b.depth; });
  std::vector<size_t> positions;
  for (const Insert& insert : inserts) {
    size_t at = text.size();
    for (size_t i = static_cast<size_t>(insert.depth * static_cast<double>(text.size())); i + 1 < text.size();
         ++i) {
      if (text[i] == '.' && (text[i + 1] == ' ' || text[i + 1] == '\n')) {
        at = i + 2;
        break;
      }
    }
    positions.push_back(at);
  }
  const size_t prose_size = text.size();
  for (size_t i = inserts.size(); i-- > 0;) {
    text.insert(positions[i], positions[i] == prose_size ? " " + inserts[i].text : inserts[i].text + " ");
  }
  return text;
}

std::string needle(const std::string& key, const std::string& number) {
  return "The special magic number for " + key + " is " + number + ".";
}

constexpr const char* kNiahInstruction =
    "A long text follows. Hidden in it are special magic numbers, each tied to a name. "
    "Memorize them: you will be asked about them at the end.";

TaskDraft draft_niah(const Tokenizer& tok, const RulerSource& source, RulerTask task, std::mt19937_64& rng) {
  TaskDraft d;
  d.instruction = kNiahInstruction;
  const int needles = task == RulerTask::NIAH_SINGLE       ? 1
                      : task == RulerTask::NIAH_MULTIKEY   ? kMultiKeyNeedles
                      : task == RulerTask::NIAH_MULTIVALUE ? kMultiValueNeedles
                                                           : kMultiQueryNeedles;
  const int keys_needed = task == RulerTask::NIAH_MULTIVALUE ? 1 : needles;
  const std::vector<std::string> keys = draw_distinct(rng, keys_needed, draw_key);
  const std::vector<std::string> numbers =
      draw_distinct(rng, needles, [](std::mt19937_64& r) { return draw_number(r, 7); });
  std::vector<Insert> inserts;
  for (int i = 0; i < needles; ++i) {
    inserts.push_back(
        {draw_fraction(rng), needle(keys[task == RulerTask::NIAH_MULTIVALUE ? 0 : i], numbers[i])});
  }
  if (task == RulerTask::NIAH_SINGLE || task == RulerTask::NIAH_MULTIKEY) {
    d.question =
        "Question: What is the special magic number for " + keys[0] + "? Reply with the number only.";
    d.answer_prefix = "The special magic number for " + keys[0] + " is";
    d.expected = {numbers[0]};
  } else if (task == RulerTask::NIAH_MULTIVALUE) {
    d.question =
        "Question: What are all the special magic numbers for " + keys[0] + "? Reply with the numbers only.";
    d.answer_prefix = "The special magic numbers for " + keys[0] + " are";
    d.expected = numbers;
  } else {
    const std::vector<std::string> asked(keys.begin(), keys.begin() + kMultiQueryAsked);
    const std::string names = join(asked, ", ", " and ");
    d.question =
        "Question: What are the special magic numbers for " + names + "? Reply with the numbers only.";
    d.answer_prefix = "The special magic numbers for " + names + " are";
    d.expected.assign(numbers.begin(), numbers.begin() + kMultiQueryAsked);
  }
  const uint64_t start = draw(rng, source.prose_ids.size());
  d.context = [&tok, &source, start, inserts](int64_t budget) {
    return prose_with_inserts(tok, source, start, inserts, budget);
  };
  return d;
}

TaskDraft draft_kv_retrieval(const Tokenizer& tok, std::mt19937_64& rng) {
  TaskDraft d;
  const std::string key = draw_uuid(rng), value = draw_uuid(rng);
  d.instruction = "Below is a JSON object of many key-value pairs; keys and values are random identifiers.";
  d.question = "Question: What is the value of the key \"" + key +
               "\" in the JSON object above? Reply with the value only.";
  d.answer_prefix = "The value of the key \"" + key + "\" is";
  d.expected = {value};
  const double depth = draw_fraction(rng);
  const uint64_t filler_seed = rng();
  d.context = [&tok, key, value, depth, filler_seed](int64_t budget) -> Result<std::string> {
    std::mt19937_64 filler(filler_seed);
    auto pair = [](const std::string& k, const std::string& v) { return "\"" + k + "\": \"" + v + "\""; };
    const std::string target = pair(key, value);
    int64_t left = budget - count_tokens(tok, "{\n" + target + "\n}");
    std::vector<std::string> pairs;
    for (;;) {
      std::string next = pair(draw_uuid(filler), draw_uuid(filler));
      left -= count_tokens(tok, next + ",\n");
      if (left < 0) break;
      pairs.push_back(std::move(next));
    }
    if (pairs.empty()) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens of context cannot hold two key-value pairs",
                        budget);
    }
    // depth < 1: the target goes before pair 0 .. after the last one.
    pairs.insert(pairs.begin() + static_cast<int64_t>(depth * static_cast<double>(pairs.size() + 1)), target);
    return "{\n" + join(pairs, ",\n", ",\n") + "\n}";
  };
  return d;
}

TaskDraft draft_variable_tracking(const Tokenizer& tok, const RulerSource& source, std::mt19937_64& rng) {
  TaskDraft d;
  const std::vector<std::string> names = draw_distinct(rng, 2 * kChainVariables, draw_variable);
  const std::vector<std::string> values =
      draw_distinct(rng, 2, [](std::mt19937_64& r) { return draw_number(r, 5); });
  // Two chains (the asked one and a distractor), each in order through the text, interleaved at random.
  std::vector<Insert> inserts;
  for (int chain = 0; chain < 2; ++chain) {
    std::vector<double> depths;
    for (int i = 0; i < kChainVariables; ++i) depths.push_back(draw_fraction(rng));
    std::sort(depths.begin(), depths.end());
    for (int i = 0; i < kChainVariables; ++i) {
      const std::string& name = names[chain * kChainVariables + i];
      const std::string source_text =
          i == 0 ? values[chain] : "VAR " + names[chain * kChainVariables + i - 1];
      inserts.push_back({depths[i], "VAR " + name + " = " + source_text + "."});
    }
  }
  d.instruction =
      "Variable assignments of the form VAR <name> = <value> are hidden in the text below. "
      "Keep track of them.";
  d.question = "Question: Which variables hold the value " + values[0] +
               ", directly or through a chain of assignments? List every one of them.";
  d.answer_prefix = "The variables that hold the value " + values[0] + " are:";
  d.expected.assign(names.begin(), names.begin() + kChainVariables);
  const uint64_t start = draw(rng, source.prose_ids.size());
  d.context = [&tok, &source, start, inserts](int64_t budget) {
    return prose_with_inserts(tok, source, start, inserts, budget);
  };
  return d;
}

Result<TaskDraft> draft_common_words(const RulerSource& source, std::mt19937_64& rng) {
  const int64_t vocabulary = static_cast<int64_t>(source.words.size());
  if (vocabulary < 4 * kCommonWords) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "the prose has {} distinct words of 5-12 letters; common_words needs at least {} "
                      "(pass a longer --text)",
                      vocabulary, 4 * kCommonWords);
  }
  std::vector<int32_t> order(static_cast<size_t>(vocabulary));
  for (int32_t i = 0; i < vocabulary; ++i) order[static_cast<size_t>(i)] = i;
  shuffle(order, rng);  // the first ten are the common words, the rest fill the list
  TaskDraft d;
  for (int i = 0; i < kCommonWords; ++i) d.expected.push_back(source.words[static_cast<size_t>(order[i])]);
  d.instruction = "Below is a long list of words. Some of them occur many times.";
  d.question = "Question: Which 10 words occur most often in the list above? Reply with the 10 words only.";
  d.answer_prefix = "The 10 most frequent words in the list are:";
  const uint64_t shuffle_seed = rng();
  d.context = [&source, order, shuffle_seed](int64_t budget) -> Result<std::string> {
    int64_t common_tokens = 0, rare_tokens = 0;  // one occurrence of each
    for (size_t i = 0; i < order.size(); ++i) {
      (i < kCommonWords ? common_tokens : rare_tokens) += source.word_tokens[static_cast<size_t>(order[i])];
    }
    // Ten words repeat `repeats` times (more as the list grows, up to RULER's 30); the rest appear
    // `rare_repeats` times, once while the vocabulary lasts, and always well below `repeats`.
    const int64_t entries = budget * static_cast<int64_t>(order.size()) / (common_tokens + rare_tokens);
    int64_t repeats = std::clamp<int64_t>(entries / 40, 3, 30), rare_repeats = 1;
    for (;;) {
      const int64_t rare_budget = budget - repeats * common_tokens;
      if (rare_budget < kMinContextTokens / 2) {
        return make_error(StatusCode::INVALID_ARGUMENT,
                          "{} tokens of context cannot hold ten words {} times each and some others", budget,
                          repeats);
      }
      rare_repeats = (rare_budget + rare_tokens - 1) / rare_tokens;
      if (repeats >= 3 * rare_repeats) break;
      repeats = 3 * rare_repeats;
    }
    std::vector<int32_t> list;
    int64_t left = budget;
    for (int i = 0; i < kCommonWords; ++i) {
      for (int64_t r = 0; r < repeats; ++r) list.push_back(order[i]);
      left -= repeats * source.word_tokens[static_cast<size_t>(order[i])];
    }
    for (int64_t pass = 0; pass < rare_repeats; ++pass) {
      for (size_t i = kCommonWords; i < order.size(); ++i) {
        const int32_t tokens = source.word_tokens[static_cast<size_t>(order[i])];
        if (left < tokens) break;
        list.push_back(order[i]);
        left -= tokens;
      }
    }
    std::mt19937_64 rng_list(shuffle_seed);
    shuffle(list, rng_list);
    std::string text;
    for (int32_t word : list) {
      if (!text.empty()) text += ' ';
      text += source.words[static_cast<size_t>(word)];
    }
    return text;
  };
  return d;
}

Result<TaskDraft> draft_task(const Tokenizer& tok, const RulerSource& source, RulerTask task, uint64_t seed) {
  std::mt19937_64 rng(seed);
  switch (task) {
    case RulerTask::NIAH_SINGLE:
    case RulerTask::NIAH_MULTIKEY:
    case RulerTask::NIAH_MULTIVALUE:
    case RulerTask::NIAH_MULTIQUERY:
      return draft_niah(tok, source, task, rng);
    case RulerTask::KV_RETRIEVAL:
      return draft_kv_retrieval(tok, rng);
    case RulerTask::VARIABLE_TRACKING:
      return draft_variable_tracking(tok, source, rng);
    case RulerTask::COMMON_WORDS:
      return draft_common_words(source, rng);
  }
  return make_error(StatusCode::INTERNAL, "unknown RULER task {}", static_cast<int>(task));
}

Result<std::vector<int32_t>> render_prompt(const Tokenizer& tok, const TaskDraft& d,
                                           const std::string& context) {
  const std::vector<ChatMessage> messages{{"user", d.instruction + "\n\n" + context + "\n\n" + d.question}};
  SACC_ASSIGN_OR_RETURN(std::string text, tok.apply_chat_template(messages, true));
  return tok.encode(text + d.answer_prefix, false);
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// Whether `token` occurs in `text` with no letter or digit right before or after it.
bool contains_token(std::string_view text, std::string_view token) {
  for (size_t at = text.find(token); at != std::string_view::npos; at = text.find(token, at + 1)) {
    const size_t end = at + token.size();
    if ((at == 0 || !is_word_char(text[at - 1])) && (end == text.size() || !is_word_char(text[end])))
      return true;
  }
  return false;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::span<const RulerTask> all_ruler_tasks() {
  return kTasks;
}

std::string_view ruler_task_name(RulerTask task) {
  return kTaskNames[static_cast<size_t>(task)];
}

Result<std::vector<RulerTask>> parse_ruler_tasks(const std::string& text) {
  if (text == "all") return std::vector<RulerTask>(kTasks.begin(), kTasks.end());
  std::vector<RulerTask> tasks;
  std::stringstream stream(text);
  std::string name;
  while (std::getline(stream, name, ',')) {
    if (name.empty()) continue;
    const auto it = std::find(kTaskNames.begin(), kTaskNames.end(), name);
    if (it == kTaskNames.end()) {
      return make_error(StatusCode::INVALID_ARGUMENT, "unknown RULER task '{}'; the tasks are all or {}",
                        name,
                        join(std::vector<std::string>(kTaskNames.begin(), kTaskNames.end()), ", ", ", "));
    }
    const RulerTask task = kTasks[static_cast<size_t>(it - kTaskNames.begin())];
    if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) tasks.push_back(task);
  }
  if (tasks.empty()) return make_error(StatusCode::INVALID_ARGUMENT, "--tasks names no task");
  return tasks;
}

int64_t ruler_answer_tokens(RulerTask task) {
  switch (task) {
    case RulerTask::NIAH_SINGLE:
    case RulerTask::NIAH_MULTIKEY:
      return 32;  // seven digits, which some tokenizers split one by one, and a full stop
    case RulerTask::KV_RETRIEVAL:
      return 48;  // a UUID takes 25-30 tokens
    case RulerTask::NIAH_MULTIVALUE:
    case RulerTask::NIAH_MULTIQUERY:
    case RulerTask::VARIABLE_TRACKING:
      return 64;  // four numbers or five names, with separators
    case RulerTask::COMMON_WORDS:
      return 96;  // ten words, often numbered
  }
  return 64;
}

Result<RulerSource> prepare_ruler_source(const Tokenizer& tok, const std::string& prose) {
  RulerSource source;
  source.prose_ids = tok.encode(prose, false);
  if (source.prose_ids.size() < 256) {
    return make_error(StatusCode::INVALID_ARGUMENT, "the prose has {} tokens; RULER tasks need at least 256",
                      source.prose_ids.size());
  }
  std::set<std::string> words;
  std::string word;
  for (size_t i = 0; i <= prose.size(); ++i) {
    const char c = i < prose.size() ? prose[i] : ' ';
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      continue;
    }
    if (word.size() >= 5 && word.size() <= 12 && !kAnswerWords.count(word)) words.insert(word);
    word.clear();
  }
  source.words.assign(words.begin(), words.end());
  for (const std::string& w : source.words) {
    source.word_tokens.push_back(static_cast<int32_t>(count_tokens(tok, " " + w)));
  }
  return source;
}

Result<RulerSample> make_ruler_sample(const Tokenizer& tok, const RulerSource& source, RulerTask task,
                                      int64_t length, uint64_t seed) {
  SACC_ASSIGN_OR_RETURN(TaskDraft draft, draft_task(tok, source, task, seed));
  const std::string what = std::string(ruler_task_name(task)) + " at " + std::to_string(length) + " tokens";
  SACC_ASSIGN_OR_RETURN(std::vector<int32_t> frame, render_prompt(tok, draft, ""));
  int64_t budget = length - static_cast<int64_t>(frame.size()) - kSlackTokens;
  RulerSample sample{task, length, seed, {}, draft.question, draft.expected};
  // Usually one pass; a prompt that tokenizes past `length` is rebuilt with the overshoot taken off.
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (budget < kMinContextTokens) {
      return make_error(
          StatusCode::INVALID_ARGUMENT,
          "{}: the question and chat template take {} tokens, leaving {} for the context; use a "
          "longer length",
          what, frame.size(), std::max<int64_t>(budget, 0));
    }
    Result<std::string> context = draft.context(budget);
    if (!context) return context.status().with_context(what);
    SACC_ASSIGN_OR_RETURN(sample.ids, render_prompt(tok, draft, *context));
    const int64_t over = static_cast<int64_t>(sample.ids.size()) - length;
    if (over <= 0) return sample;
    budget -= over + kSlackTokens;
  }
  return make_error(StatusCode::INTERNAL, "{}: the prompt keeps exceeding the length", what);
}

double score_ruler_answer(RulerTask task, std::span<const std::string> expected, std::string_view answer) {
  if (expected.empty()) return 0.0;
  const bool any_case = task == RulerTask::COMMON_WORDS;
  const std::string folded = any_case ? lower(answer) : std::string(answer);
  size_t found = 0;
  for (const std::string& e : expected) found += contains_token(folded, any_case ? lower(e) : e);
  if (task == RulerTask::COMMON_WORDS)
    return static_cast<double>(found) / static_cast<double>(expected.size());
  return found == expected.size() ? 1.0 : 0.0;
}

}  // namespace sacc::cli
