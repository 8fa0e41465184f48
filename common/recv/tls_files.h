// The TLS files of a listener (--tls-cert, --tls-key, --tls-client-ca).
// Thread-safety: values; pure functions.
#pragma once

#include <string>

#include "common/base/status.h"

namespace telkit {

struct TlsFiles {
  std::string cert;       // PEM certificate chain; empty: plain TCP
  std::string key;        // PEM private key (unencrypted)
  std::string client_ca;  // PEM CA bundle; set: clients must present a certificate it signed (mutual TLS)

  bool enabled() const { return !cert.empty(); }
};

// OK when TLS is off, or cert and key are both given and readable (and the
// client CA when given). INVALID_ARGUMENT for a half configuration,
// NOT_FOUND / PERMISSION_DENIED for an unreadable file.
Status ValidateTlsFiles(const TlsFiles& files);

// The whole file, for PEM material. Errors as ErrnoError.
Result<std::string> ReadSmallFile(const std::string& path);

}  // namespace telkit
