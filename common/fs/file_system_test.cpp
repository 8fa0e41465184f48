// The FileSystem contract, run against PosixFileSystem (in a temporary
// directory) and FaultInjectingFileSystem alike.
#include "common/fs/file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <functional>
#include <memory>

#include "common/fs/fault_injecting_file_system.h"
#include "common/fs/posix_file_system.h"

namespace telkit {
namespace {

struct Env {
  std::unique_ptr<FileSystem> owned;
  FileSystem* fs = nullptr;
  std::string root;
};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/telkit-fs-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    if (!path_.empty()) [[maybe_unused]]
      int r = std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class FileSystemContract : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      fs_ = DefaultFileSystem();
      root_ = tmp_.path();
      ASSERT_FALSE(root_.empty());
    } else {
      fault_ = std::make_unique<FaultInjectingFileSystem>();
      fs_ = fault_.get();
      root_ = "/data";
      ASSERT_TRUE(fs_->CreateDir(root_).ok());
    }
  }
  std::string P(std::string_view name) const { return JoinPath(root_, name); }

  TempDir tmp_;
  std::unique_ptr<FaultInjectingFileSystem> fault_;
  FileSystem* fs_ = nullptr;
  std::string root_;
};

TEST_P(FileSystemContract, WriteReadAppend) {
  auto w = fs_->NewWritableFile(P("a"));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append("hello ").ok());
  ASSERT_TRUE((*w)->Append("world").ok());
  EXPECT_EQ((*w)->size(), 11u);
  ASSERT_TRUE((*w)->Sync().ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_TRUE((*w)->Close().ok());  // idempotent
  EXPECT_EQ((*w)->Append("x").code(), StatusCode::kFailedPrecondition);

  auto text = ReadFileToString(fs_, P("a"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello world");

  auto r = fs_->NewReadableFile(P("a"));
  ASSERT_TRUE(r.ok());
  char buf[5];
  auto n = (*r)->ReadAt(6, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");
  n = (*r)->ReadAt(9, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);  // short only at the end
  n = (*r)->ReadAt(100, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(*(*r)->Size(), 11u);

  auto a = fs_->NewAppendableFile(P("a"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->size(), 11u);
  ASSERT_TRUE((*a)->Append("!").ok());
  ASSERT_TRUE((*a)->Close().ok());
  EXPECT_EQ(*ReadFileToString(fs_, P("a")), "hello world!");
  EXPECT_EQ(ReadFileToString(fs_, P("a"), 3).status().code(), StatusCode::kResourceExhausted);

  // NewWritableFile truncates.
  w = fs_->NewWritableFile(P("a"));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->size(), 0u);
  EXPECT_EQ(*ReadFileToString(fs_, P("a")), "");
}

TEST_P(FileSystemContract, Directories) {
  ASSERT_TRUE(fs_->CreateDir(P("d")).ok());
  EXPECT_TRUE(fs_->CreateDir(P("d")).ok());  // already there
  EXPECT_EQ(fs_->CreateDir(P("missing/x")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(fs_->NewWritableFile(P("d/b")).ok());
  ASSERT_TRUE(fs_->NewWritableFile(P("d/a")).ok());
  ASSERT_TRUE(fs_->CreateDir(P("d/sub")).ok());
  auto names = fs_->ListDir(P("d"));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "sub"}));
  EXPECT_TRUE(fs_->SyncDir(P("d")).ok());

  auto info = fs_->Stat(P("d"));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->is_dir);
  EXPECT_EQ(fs_->Stat(P("nope")).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs_->RemoveDir(P("d")).ok());                               // not empty
  EXPECT_EQ(fs_->CreateDir(P("d/a")).code(), StatusCode::kAlreadyExists);  // a file

  ASSERT_TRUE(fs_->RemoveFile(P("d/a")).ok());
  EXPECT_EQ(fs_->RemoveFile(P("d/a")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(fs_->RemoveFile(P("d/b")).ok());
  ASSERT_TRUE(fs_->RemoveDir(P("d/sub")).ok());
  ASSERT_TRUE(fs_->RemoveDir(P("d")).ok());
  EXPECT_EQ(fs_->ListDir(P("d")).status().code(), StatusCode::kNotFound);
}

TEST_P(FileSystemContract, RenameReplacesAndMovesDirectories) {
  ASSERT_TRUE(WriteFileDurably(fs_, P("x"), "new").ok());
  ASSERT_TRUE(WriteFileDurably(fs_, P("y"), "old").ok());
  ASSERT_TRUE(fs_->Rename(P("x"), P("y")).ok());
  EXPECT_EQ(*ReadFileToString(fs_, P("y")), "new");
  EXPECT_EQ(fs_->Stat(P("x")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Rename(P("x"), P("z")).code(), StatusCode::kNotFound);

  ASSERT_TRUE(fs_->CreateDir(P("blk.tmp")).ok());
  ASSERT_TRUE(WriteFileDurably(fs_, P("blk.tmp/meta"), "m").ok());
  ASSERT_TRUE(fs_->Rename(P("blk.tmp"), P("blk")).ok());
  EXPECT_EQ(*ReadFileToString(fs_, P("blk/meta")), "m");
  EXPECT_FALSE(fs_->Stat(P("blk.tmp")).ok());
}

TEST_P(FileSystemContract, TruncateAndSyncFile) {
  ASSERT_TRUE(WriteFileDurably(fs_, P("t"), "0123456789").ok());
  ASSERT_TRUE(fs_->Truncate(P("t"), 4).ok());
  ASSERT_TRUE(fs_->SyncFile(P("t")).ok());
  EXPECT_EQ(*ReadFileToString(fs_, P("t")), "0123");
  ASSERT_TRUE(fs_->Truncate(P("t"), 6).ok());
  EXPECT_EQ(*ReadFileToString(fs_, P("t")), std::string("0123\0\0", 6));
  EXPECT_EQ(fs_->Truncate(P("none"), 0).code(), StatusCode::kNotFound);
}

TEST_P(FileSystemContract, ErrorsNameThePath) {
  auto r = fs_->NewReadableFile(P("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("'" + P("missing") + "'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("no such file"), std::string::npos) << r.status().message();
}

INSTANTIATE_TEST_SUITE_P(Both, FileSystemContract, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Posix" : "FaultInjecting"; });

TEST(PathTest, JoinAndDirName) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(DirName("a/b/"), "a");
}

}  // namespace
}  // namespace telkit
