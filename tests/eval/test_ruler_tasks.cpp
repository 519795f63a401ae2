// The RULER task generator (tools/sacc/ruler_tasks.h) with SmolLM2's tokenizer from .models/ (skipped when
// absent) and a made-up prose: prompts are deterministic, fit their length, hold their answers, and the
// scoring accepts right answers and rejects wrong or partial ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "model/gguf.h"
#include "model/tokenizer.h"
#include "tools/sacc/ruler_tasks.h"

namespace sacc::cli {
namespace {

const std::string kSmolLM2 = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";

// About 30K tokens of sentences from small word lists: every sentence differs, and there are ~70 distinct
// words of 5+ letters, so common_words must repeat its rare words at longer lengths.
std::string made_up_prose() {
  const std::vector<std::string> who{"farmer", "sailor", "teacher", "painter", "miner",  "baker",
                                     "doctor", "tailor", "hunter",  "singer",  "writer", "pilot"};
  const std::vector<std::string> did{"carried", "painted",  "repaired", "watched", "counted", "followed",
                                     "cleaned", "borrowed", "measured", "ordered", "visited", "planted"};
  const std::vector<std::string> what{"bridge", "basket", "window", "tractor", "letter", "garden",  "wagon",
                                      "fence",  "ladder", "engine", "blanket", "bottle", "compass", "barrel"};
  const std::vector<std::string> where{"village", "harbour", "market", "valley",  "station", "forest",
                                       "castle",  "school",  "bakery", "library", "temple",  "factory"};
  std::string text;
  for (size_t i = 0; i < 2500; ++i) {
    text += "The " + who[i % who.size()] + " " + did[(i / 3) % did.size()] + " the " +
            what[(i * 5) % what.size()] + " near the " + where[(i / 5) % where.size()] + " on day " +
            std::to_string(i) + ".";
    text += i % 6 == 5 ? "\n" : " ";
  }
  return text;
}

class RulerTasks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kSmolLM2)) return;
    Result<GgufFile> file = GgufFile::open(kSmolLM2);
    ASSERT_TRUE(file.is_ok()) << file.status().to_string();
    Result<Tokenizer> tok = Tokenizer::from_gguf(*file);
    ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
    tok_ = std::make_unique<Tokenizer>(std::move(tok).value());
    Result<RulerSource> source = prepare_ruler_source(*tok_, made_up_prose());
    ASSERT_TRUE(source.is_ok()) << source.status().to_string();
    source_ = std::make_unique<RulerSource>(std::move(source).value());
  }
  static void TearDownTestSuite() {
    source_.reset();
    tok_.reset();
  }
  void SetUp() override {
    if (!tok_) GTEST_SKIP() << kSmolLM2 << " is absent; run scripts/fetch_models.sh to test with it";
  }

  RulerSample sample(RulerTask task, int64_t length, uint64_t seed) const {
    Result<RulerSample> s = make_ruler_sample(*tok_, *source_, task, length, seed);
    EXPECT_TRUE(s.is_ok()) << ruler_task_name(task) << " " << length << ": " << s.status().to_string();
    return s.is_ok() ? *s : RulerSample{};
  }

  static std::unique_ptr<Tokenizer> tok_;
  static std::unique_ptr<RulerSource> source_;
};

std::unique_ptr<Tokenizer> RulerTasks::tok_;
std::unique_ptr<RulerSource> RulerTasks::source_;

// Whole-word occurrences of `word` in `text`.
int count_word(const std::string& text, const std::string& word) {
  int count = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const size_t end = at + word.size();
    count += (at == 0 || !std::isalpha(static_cast<unsigned char>(text[at - 1]))) &&
             (end == text.size() || !std::isalpha(static_cast<unsigned char>(text[end])));
  }
  return count;
}

TEST_F(RulerTasks, SameSeedSamePrompt) {
  for (RulerTask task : all_ruler_tasks()) {
    const RulerSample a = sample(task, 1500, 42), b = sample(task, 1500, 42);
    EXPECT_EQ(a.ids, b.ids) << ruler_task_name(task);
    EXPECT_EQ(a.expected, b.expected) << ruler_task_name(task);
    EXPECT_EQ(a.question, b.question) << ruler_task_name(task);
  }
}

TEST_F(RulerTasks, DifferentSeedsDiffer) {
  for (RulerTask task : all_ruler_tasks()) {
    const RulerSample a = sample(task, 1500, 1), b = sample(task, 1500, 2);
    EXPECT_NE(a.ids, b.ids) << ruler_task_name(task);
    EXPECT_NE(a.expected, b.expected) << ruler_task_name(task);
  }
}

TEST_F(RulerTasks, PromptFillsItsLengthWithoutExceedingIt) {
  for (int64_t length : {400, 1000, 3001, 8000}) {
    for (RulerTask task : all_ruler_tasks()) {
      const RulerSample s = sample(task, length, static_cast<uint64_t>(length));
      EXPECT_LE(static_cast<int64_t>(s.ids.size()), length) << ruler_task_name(task);
      EXPECT_GE(static_cast<double>(s.ids.size()), 0.8 * static_cast<double>(length))
          << ruler_task_name(task);
      EXPECT_EQ(s.length, length);
    }
  }
}

TEST_F(RulerTasks, EveryExpectedAnswerIsInThePrompt) {
  const std::map<RulerTask, size_t> answers{
      {RulerTask::NIAH_SINGLE, 1},     {RulerTask::NIAH_MULTIKEY, 1}, {RulerTask::NIAH_MULTIVALUE, 4},
      {RulerTask::NIAH_MULTIQUERY, 4}, {RulerTask::KV_RETRIEVAL, 1},  {RulerTask::VARIABLE_TRACKING, 5},
      {RulerTask::COMMON_WORDS, 10}};
  for (RulerTask task : all_ruler_tasks()) {
    for (uint64_t seed : {3u, 4u}) {
      const RulerSample s = sample(task, 2000, seed);
      const std::string text = tok_->decode(s.ids);
      EXPECT_EQ(s.expected.size(), answers.at(task)) << ruler_task_name(task);
      for (const std::string& e : s.expected) {
        EXPECT_NE(text.find(e), std::string::npos) << ruler_task_name(task) << ": '" << e << "' missing";
      }
      // The question comes after the context and the prompt ends by opening the answer.
      EXPECT_NE(text.find(s.question), std::string::npos) << ruler_task_name(task);
      EXPECT_LT(text.rfind(s.expected.back()), text.find(s.question)) << ruler_task_name(task);
    }
  }
}

TEST_F(RulerTasks, VariableChainIsInOrder) {
  const RulerSample s = sample(RulerTask::VARIABLE_TRACKING, 3000, 9);
  const std::string text = tok_->decode(s.ids);
  size_t previous = 0;
  for (size_t i = 1; i < s.expected.size(); ++i) {
    const size_t at = text.find("VAR " + s.expected[i] + " = VAR " + s.expected[i - 1] + ".");
    ASSERT_NE(at, std::string::npos) << s.expected[i];
    EXPECT_GT(at, previous);
    previous = at;
  }
}

TEST_F(RulerTasks, CommonWordsAreTheTenMostFrequent) {
  for (int64_t length : {1000, 6000}) {  // the second repeats rare words: the vocabulary runs out
    const RulerSample s = sample(RulerTask::COMMON_WORDS, length, 5);
    const std::string text = tok_->decode(s.ids);
    int least_common = 1 << 30;
    for (const std::string& w : s.expected) least_common = std::min(least_common, count_word(text, w));
    for (const std::string& w : source_->words) {
      if (std::find(s.expected.begin(), s.expected.end(), w) != s.expected.end()) continue;
      EXPECT_LT(count_word(text, w), least_common) << w << " at " << length;
    }
  }
}

TEST_F(RulerTasks, TooShortLengthIsAnActionableError) {
  Result<RulerSample> s = make_ruler_sample(*tok_, *source_, RulerTask::NIAH_MULTIQUERY, 120, 1);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.status().message().find("niah_multiquery at 120 tokens"), std::string::npos)
      << s.status().to_string();
}

TEST(RulerScore, ExactMatchOfEveryExpectedString) {
  const std::vector<std::string> one{"4817263"};
  EXPECT_EQ(score_ruler_answer(RulerTask::NIAH_SINGLE, one, " 4817263."), 1.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::NIAH_SINGLE, one, " 4817264."), 0.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::NIAH_SINGLE, one, " 48172631"), 0.0) << "a longer number is wrong";
  EXPECT_EQ(score_ruler_answer(RulerTask::NIAH_SINGLE, one, " 4 8 1 7 2 6 3"), 0.0);
  const std::vector<std::string> four{"1111111", "2222222", "3333333", "4444444"};
  EXPECT_EQ(score_ruler_answer(RulerTask::NIAH_MULTIVALUE, four, "4444444, 2222222, 1111111 and 3333333"),
            1.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::NIAH_MULTIVALUE, four, "1111111, 2222222, 3333333"), 0.0);
  const std::vector<std::string> uuid{"3f2a9c1d-0b4e-4a6f-9d21-7c5e8b0a1f34"};
  EXPECT_EQ(score_ruler_answer(RulerTask::KV_RETRIEVAL, uuid, " \"3f2a9c1d-0b4e-4a6f-9d21-7c5e8b0a1f34\""),
            1.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::KV_RETRIEVAL, uuid, " 3F2A9C1D-0B4E-4A6F-9D21-7C5E8B0A1F34"), 0.0);
  const std::vector<std::string> names{"QWERT", "ASDFG"};
  EXPECT_EQ(score_ruler_answer(RulerTask::VARIABLE_TRACKING, names, " ASDFG, QWERT"), 1.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::VARIABLE_TRACKING, names, " ASDFG, QWERTY"), 0.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::VARIABLE_TRACKING, names, " asdfg, qwert"), 0.0);
}

TEST(RulerScore, CommonWordsScoreTheShareFoundInAnyCase) {
  const std::vector<std::string> words{"lantern", "meadow", "harbor", "violin"};
  EXPECT_EQ(score_ruler_answer(RulerTask::COMMON_WORDS, words, " 1. Lantern 2. meadow 3. HARBOR 4. violin"),
            1.0);
  EXPECT_EQ(score_ruler_answer(RulerTask::COMMON_WORDS, words, " lantern, meadows, harbor"), 0.5);
  EXPECT_EQ(score_ruler_answer(RulerTask::COMMON_WORDS, words, ""), 0.0);
}

TEST(RulerTaskNames, AllOrAListAndUnknownNamesAreErrors) {
  Result<std::vector<RulerTask>> all = parse_ruler_tasks("all");
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->size(), 7u);
  Result<std::vector<RulerTask>> two = parse_ruler_tasks("kv_retrieval,niah_single");
  ASSERT_TRUE(two.is_ok());
  EXPECT_EQ(*two, (std::vector<RulerTask>{RulerTask::KV_RETRIEVAL, RulerTask::NIAH_SINGLE}));
  for (RulerTask task : all_ruler_tasks()) {
    Result<std::vector<RulerTask>> one = parse_ruler_tasks(std::string(ruler_task_name(task)));
    ASSERT_TRUE(one.is_ok());
    EXPECT_EQ(one->front(), task);
  }
  Result<std::vector<RulerTask>> bad = parse_ruler_tasks("niah_single,needle");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.status().message().find("'needle'"), std::string::npos) << bad.status().to_string();
  EXPECT_NE(bad.status().message().find("variable_tracking"), std::string::npos) << bad.status().to_string();
  EXPECT_FALSE(parse_ruler_tasks("").is_ok());
}

}  // namespace
}  // namespace sacc::cli
