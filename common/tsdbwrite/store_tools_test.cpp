// ParseFlagTimeMs (the --start / --end forms of `tsdb-write query`),
// QueryStoreText and FormatRejected.
#include <gtest/gtest.h>

#include "common/tsdbwrite/store_tools.h"

namespace telkit {
namespace {

TEST(ParseFlagTimeMs, UnixSecondsAndRfc3339) {
  EXPECT_EQ(*ParseFlagTimeMs("--start", "1700000000"), 1'700'000'000'000);
  EXPECT_EQ(*ParseFlagTimeMs("--start", "1700000000.25"), 1'700'000'000'250);
  EXPECT_EQ(*ParseFlagTimeMs("--start", "-1.5"), -1500);
  EXPECT_EQ(*ParseFlagTimeMs("--end", "2023-11-14T22:13:20Z"), 1'700'000'000'000);
  EXPECT_EQ(*ParseFlagTimeMs("--end", "2023-11-14T22:13:20.5Z"), 1'700'000'000'500);
  EXPECT_EQ(*ParseFlagTimeMs("--end", "2023-11-15T00:13:20+02:00"), 1'700'000'000'000);
  EXPECT_EQ(*ParseFlagTimeMs("--end", "2023-11-14T21:13:20-01:00"), 1'700'000'000'000);
}

TEST(ParseFlagTimeMs, OtherTextIsInvalidArgument) {
  for (const char* bad : {"", "now", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13:20Zx", "inf"}) {
    auto r = ParseFlagTimeMs("--start", bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message(), "--start: '" + std::string(bad) + "' is neither Unix seconds nor RFC 3339");
  }
}

TEST(FormatRejected, ReasonsInOrderOrNone) {
  EXPECT_EQ(FormatRejected({}), "none");
  EXPECT_EQ(FormatRejected({{"too_old", 3}, {"duplicate", 1}}), "duplicate 1, too_old 3");
}

TEST(QueryStoreText, MissingStoreIsAnError) {
  std::vector<LabelMatcher> none;
  auto r = QueryStoreText("/nonexistent/telkit-store", none, 0, 1);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace telkit
