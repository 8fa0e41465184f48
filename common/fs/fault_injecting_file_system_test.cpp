// What FaultInjectingFileSystem keeps and drops on a crash, and its faults.
#include "common/fs/fault_injecting_file_system.h"

#include <gtest/gtest.h>

#include <set>

namespace telkit {
namespace {

std::string Read(FileSystem& fs, std::string_view path) {
  auto r = ReadFileToString(&fs, path);
  return r.ok() ? *r : "<" + std::string(StatusCodeName(r.status().code())) + ">";
}

// A directory /d whose entry is durable.
void MakeDurableDir(FaultInjectingFileSystem& fs) {
  ASSERT_TRUE(fs.CreateDir("/d").ok());
  ASSERT_TRUE(fs.SyncDir("/").ok());
}

TEST(FaultInjectingFileSystem, CrashDropsUnsyncedBytes) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  auto f = fs.NewWritableFile("/d/f").value();
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  ASSERT_TRUE(f->Append("synced").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("+lost").ok());
  EXPECT_EQ(*fs.SyncedSize("/d/f"), 6u);
  EXPECT_EQ(fs.sync_count(), 1u);

  fs.SimulateCrash();
  EXPECT_TRUE(fs.down());
  EXPECT_EQ(fs.Stat("/d/f").status().code(), StatusCode::kUnavailable);  // down until restart
  fs.Restart();
  EXPECT_EQ(Read(fs, "/d/f"), "synced");
  // The handle from before the crash is dead, even after the restart.
  EXPECT_EQ(f->Append("x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(Read(fs, "/d/f"), "synced");
}

TEST(FaultInjectingFileSystem, UnsyncedDirectoryEntriesVanish) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  // Synced data but no SyncDir: the file is gone after a crash.
  auto f = fs.NewWritableFile("/d/new").value();
  ASSERT_TRUE(f->Append("data").ok());
  ASSERT_TRUE(f->Sync().ok());
  EXPECT_FALSE(fs.EntryDurable("/d/new"));
  // A directory created but its parent not synced: gone with its contents.
  ASSERT_TRUE(fs.CreateDir("/d/sub").ok());
  ASSERT_TRUE(fs.NewWritableFile("/d/sub/x").ok());
  ASSERT_TRUE(fs.SyncDir("/d/sub").ok());
  fs.SimulateCrash();
  fs.Restart();
  EXPECT_EQ(fs.Stat("/d/new").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs.Stat("/d/sub").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(fs.ListDir("/d")->empty());
}

TEST(FaultInjectingFileSystem, SyncedEntriesSurvive) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  auto f = fs.NewWritableFile("/d/f").value();
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  EXPECT_TRUE(fs.EntryDurable("/d/f"));
  EXPECT_EQ(fs.dir_sync_count(), 2u);
  fs.SimulateCrash();
  fs.Restart();
  EXPECT_EQ(Read(fs, "/d/f"), "abc");
}

TEST(FaultInjectingFileSystem, UnsyncedRenameAndRemoveAreUndone) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  ASSERT_TRUE(WriteFileDurably(&fs, "/d/a", "A").ok());  // each syncs /d
  ASSERT_TRUE(WriteFileDurably(&fs, "/d/b", "B").ok());
  ASSERT_TRUE(WriteFileDurably(&fs, "/d/c", "C").ok());
  ASSERT_TRUE(fs.Rename("/d/a", "/d/b").ok());  // replaces b; /d not synced after it
  ASSERT_TRUE(fs.RemoveFile("/d/c").ok());
  ASSERT_TRUE(fs.NewWritableFile("/d/tmp").ok());
  EXPECT_EQ(Read(fs, "/d/b"), "A");
  EXPECT_FALSE(fs.EntryDurable("/d/b"));
  fs.SimulateCrash();
  fs.Restart();
  EXPECT_EQ(Read(fs, "/d/a"), "A");
  EXPECT_EQ(Read(fs, "/d/b"), "B");  // the replaced file is back
  EXPECT_EQ(Read(fs, "/d/c"), "C");
  EXPECT_EQ(fs.Stat("/d/tmp").status().code(), StatusCode::kNotFound);

  // The same rename followed by SyncDir survives.
  ASSERT_TRUE(fs.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  fs.SimulateCrash();
  fs.Restart();
  EXPECT_EQ(Read(fs, "/d/b"), "A");
  EXPECT_EQ(fs.Stat("/d/a").status().code(), StatusCode::kNotFound);
}

TEST(FaultInjectingFileSystem, WriteFileDurablyIsAtomicUnderCrashes) {
  // Crash at every mutating call of a replacement: old or new, never a mix.
  for (uint64_t n = 1;; ++n) {
    FaultInjectingFileSystem fs;
    MakeDurableDir(fs);
    ASSERT_TRUE(WriteFileDurably(&fs, "/d/meta", "old content").ok());
    fs.CrashAtOp(n);
    Status s = WriteFileDurably(&fs, "/d/meta", "new content, longer");
    bool crashed = fs.down();
    fs.Restart();
    std::string got = Read(fs, "/d/meta");
    if (!crashed) {
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(got, "new content, longer");
      break;
    }
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    EXPECT_TRUE(got == "old content" || got == "new content, longer") << n << ": " << got;
  }
}

TEST(FaultInjectingFileSystem, TornAndZeroModes) {
  std::set<size_t> sizes;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    FaultInjectingFileSystem fs;
    MakeDurableDir(fs);
    auto f = fs.NewWritableFile("/d/f").value();
    ASSERT_TRUE(fs.SyncDir("/d").ok());
    ASSERT_TRUE(f->Append("0123").ok());
    ASSERT_TRUE(f->Sync().ok());
    ASSERT_TRUE(f->Append("456789").ok());
    fs.SimulateCrash(CrashMode::kTornUnsynced, seed);
    fs.Restart();
    std::string got = Read(fs, "/d/f");
    ASSERT_GE(got.size(), 4u);
    EXPECT_EQ(got, std::string("0123456789").substr(0, got.size()));
    sizes.insert(got.size());
  }
  EXPECT_GT(sizes.size(), 3u);  // the prefix length varies with the seed

  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  auto f = fs.NewWritableFile("/d/f").value();
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  ASSERT_TRUE(f->Append("ab").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("cd").ok());
  fs.SimulateCrash(CrashMode::kZeroUnsynced);
  fs.Restart();
  EXPECT_EQ(Read(fs, "/d/f"), std::string("ab\0\0", 4));
}

TEST(FaultInjectingFileSystem, TornModeKeepsAllOrNoneOfADirectorysChanges) {
  std::set<std::string> outcomes;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    FaultInjectingFileSystem fs;
    MakeDurableDir(fs);
    ASSERT_TRUE(fs.NewWritableFile("/d/a").ok());
    ASSERT_TRUE(fs.NewWritableFile("/d/b").ok());
    fs.SimulateCrash(CrashMode::kTornUnsynced, seed);
    fs.Restart();
    auto names = *fs.ListDir("/d");
    std::string joined;
    for (auto& n : names) joined += n;
    outcomes.insert(joined);
  }
  EXPECT_EQ(outcomes, (std::set<std::string>{"", "ab"}));
}

TEST(FaultInjectingFileSystem, CrashAtOpFailsThatCallAndEverythingAfter) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  auto f = fs.NewWritableFile("/d/f").value();
  uint64_t before = fs.mutating_ops();
  fs.CrashAtOp(2);
  EXPECT_TRUE(f->Append("one").ok());
  EXPECT_EQ(f->Append("two").code(), StatusCode::kUnavailable);
  EXPECT_EQ(fs.mutating_ops(), before + 2);
  EXPECT_TRUE(fs.down());
  EXPECT_EQ(fs.CreateDir("/e").code(), StatusCode::kUnavailable);
  fs.Restart();
  EXPECT_TRUE(fs.CreateDir("/e").ok());
  EXPECT_EQ(fs.Stat("/d/f").status().code(), StatusCode::kNotFound);  // never synced into /d
}

TEST(FaultInjectingFileSystem, SpaceLimitGivesShortWriteThenEnospc) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  auto f = fs.NewWritableFile("/d/f").value();
  fs.SetSpaceLimit(5);
  EXPECT_TRUE(f->Append("abc").ok());
  Status s = f->Append("defg");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("no space left"), std::string::npos) << s.message();
  EXPECT_EQ(f->size(), 5u);
  EXPECT_EQ(f->Append("x").code(), StatusCode::kResourceExhausted);
  fs.ClearSpaceLimit();
  EXPECT_TRUE(f->Append("x").ok());
  EXPECT_EQ(Read(fs, "/d/f"), "abcdex");
}

TEST(FaultInjectingFileSystem, FaultHookFailsChosenCalls) {
  FaultInjectingFileSystem fs;
  MakeDurableDir(fs);
  int syncs = 0;
  fs.SetFaultHook([&](FsOp op, std::string_view path) -> Status {
    if (op == FsOp::kSync && ++syncs == 2) return ErrnoError("sync '" + std::string(path) + "'", EIO);
    if (op == FsOp::kRename && path == "/d/locked") return PermissionDeniedError("no");
    return OkStatus();
  });
  auto f = fs.NewWritableFile("/d/f").value();
  ASSERT_TRUE(f->Append("a").ok());
  EXPECT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("b").ok());
  Status s = f->Sync();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("input/output error"), std::string::npos) << s.message();
  EXPECT_EQ(*fs.SyncedSize("/d/f"), 1u);  // the failed sync had no effect
  ASSERT_TRUE(fs.NewWritableFile("/d/locked").ok());
  EXPECT_EQ(fs.Rename("/d/locked", "/d/z").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(fs.Stat("/d/locked").ok());
  fs.SetFaultHook({});
  EXPECT_TRUE(f->Sync().ok());
}

}  // namespace
}  // namespace telkit
