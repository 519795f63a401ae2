// `stop` strings over streamed text (tools/sacc/stop_strings.h): a stop string split across pieces is never
// sent, and text that only looked like one is sent once it is known not to be.
#include <gtest/gtest.h>

#include "tools/sacc/stop_strings.h"

namespace sacc::cli {
namespace {

// Every piece through the matcher, then finish(): what a client receives.
std::string run(const std::vector<std::string>& stops, const std::vector<std::string>& pieces,
                bool* stopped) {
  StopStringMatcher matcher(stops);
  std::string out;
  for (const std::string& p : pieces) out += matcher.push(p);
  out += matcher.finish();
  *stopped = matcher.stopped();
  return out;
}

TEST(StopStrings, NoStopsPassesEverything) {
  bool stopped = false;
  EXPECT_EQ(run({}, {"Hel", "lo"}, &stopped), "Hello");
  EXPECT_FALSE(stopped);
}

TEST(StopStrings, StopInsideOnePiece) {
  bool stopped = false;
  EXPECT_EQ(run({"END"}, {"abcENDdef", "more"}, &stopped), "abc");
  EXPECT_TRUE(stopped);
}

TEST(StopStrings, StopSplitAcrossPieces) {
  bool stopped = false;
  EXPECT_EQ(run({"\n\n"}, {"one\n", "\ntwo"}, &stopped), "one");
  EXPECT_TRUE(stopped);
}

TEST(StopStrings, HeldBackPrefixIsReleased) {
  StopStringMatcher matcher({"END"});
  EXPECT_EQ(matcher.push("abE"), "ab");  // "E" may begin "END"
  EXPECT_EQ(matcher.push("N"), "");
  EXPECT_EQ(matcher.push("x"), "ENx");
  EXPECT_EQ(matcher.finish(), "");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopStrings, PrefixAtTheEndIsSentByFinish) {
  bool stopped = false;
  EXPECT_EQ(run({"END"}, {"abEN"}, &stopped), "abEN");
  EXPECT_FALSE(stopped);
}

TEST(StopStrings, EarliestOfSeveral) {
  bool stopped = false;
  EXPECT_EQ(run({"zz", "b"}, {"a", "bzz"}, &stopped), "a");
  EXPECT_TRUE(stopped);
}

TEST(StopStrings, MultiByteCharactersStayWhole) {
  bool stopped = false;
  EXPECT_EQ(run({"é!"}, {"café", "é", "?"}, &stopped), "caféé?");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(run({"é!"}, {"caf", "é", "!"}, &stopped), "caf");
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace sacc::cli
