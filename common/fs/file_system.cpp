#include "common/fs/file_system.h"

#include <string>

namespace telkit {

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out += '/';
  out += name;
  return out;
}

std::string DirName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

Result<std::string> ReadFileToString(FileSystem* fs, std::string_view path, uint64_t max_bytes) {
  TELKIT_ASSIGN_OR_RETURN(auto file, fs->NewReadableFile(path));
  TELKIT_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > max_bytes) {
    return ResourceExhaustedError("read '" + std::string(path) + "': file of " + std::to_string(size) +
                                  " bytes is over the limit of " + std::to_string(max_bytes));
  }
  std::string out(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    TELKIT_ASSIGN_OR_RETURN(size_t n, file->ReadAt(done, std::span<char>(out.data() + done, size - done)));
    if (n == 0) break;  // shrank while reading
    done += n;
  }
  out.resize(done);
  return out;
}

Status WriteFileDurably(FileSystem* fs, std::string_view path, std::string_view data) {
  std::string tmp = std::string(path) + ".tmp";
  {
    TELKIT_ASSIGN_OR_RETURN(auto file, fs->NewWritableFile(tmp));
    TELKIT_RETURN_IF_ERROR(file->Append(data));
    TELKIT_RETURN_IF_ERROR(file->Sync());
    TELKIT_RETURN_IF_ERROR(file->Close());
  }
  TELKIT_RETURN_IF_ERROR(fs->Rename(tmp, path));
  return fs->SyncDir(DirName(path));
}

}  // namespace telkit
