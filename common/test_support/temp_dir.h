// Test support (tests only, never libtelkit): TempDir, a fresh directory
// removed with everything in it at scope exit. in_memory puts it under
// /dev/shm when there is one (SQLite's fsyncs are free there), for loops
// that open many stores.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace telkit::test_support {

class TempDir {
 public:
  explicit TempDir(bool in_memory = false) {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (in_memory && std::filesystem::is_directory("/dev/shm")) base = "/dev/shm";
    std::string tmpl = (base / "telkit_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace telkit::test_support
