#include "common/recv/tls_files.h"

#include <fstream>
#include <sstream>

namespace telkit {

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("read '" + path + "'");
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return ErrnoError("read '" + path + "'");
  return contents.str();
}

Status ValidateTlsFiles(const TlsFiles& files) {
  if (files.cert.empty() && files.key.empty() && files.client_ca.empty()) return OkStatus();
  if (files.cert.empty() || files.key.empty()) {
    return InvalidArgumentError("TLS needs both a certificate and a key");
  }
  for (const std::string* path : {&files.cert, &files.key, &files.client_ca}) {
    if (path->empty()) continue;
    TELKIT_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(*path));
    if (pem.find("-----BEGIN ") == std::string::npos) {
      return InvalidArgumentError("'" + *path + "' is not a PEM file");
    }
  }
  return OkStatus();
}

}  // namespace telkit
