#include "common/stream/json_lines_input.h"

#include <fcntl.h>

#include <mutex>
#include <string>
#include <variant>

#include "common/base/fd.h"
#include "common/stream/endpoint.h"
#include "common/stream/frame_json.h"

namespace telkit {
namespace {

class JsonLinesInput final : public StreamInput {
 public:
  JsonLinesInput(UniqueFd owned, int fd, const StreamInputOptions& options)
      : owned_(std::move(owned)), fd_(fd), options_(options) {}

  Result<std::optional<Frame>> Next() override {
    for (;;) {
      TELKIT_ASSIGN_OR_RETURN(std::optional<std::string> line, ReadLine());
      if (!line) return std::optional<Frame>();
      ++line_no_;
      std::string_view text = *line;
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
      Result<JsonLine> parsed = ParseJsonLine(text);
      if (!parsed.ok()) {
        Status s = parsed.status().WithContext("line " + std::to_string(line_no_));
        std::lock_guard lock(mu_);
        ++stats_.frames_corrupt;
        stats_.bytes_skipped += line->size() + 1;
        if (options_.on_corruption_report) options_.on_corruption_report(s);
        if (options_.on_corruption == CorruptionPolicy::kFail) return s;
        continue;
      }
      if (auto* header = std::get_if<StreamHeader>(&*parsed)) {
        if (options_.on_stream_header) options_.on_stream_header(*header, 0);
        continue;
      }
      std::lock_guard lock(mu_);
      ++stats_.frames_read;
      return std::optional<Frame>(std::move(std::get<Frame>(*parsed)));
    }
  }

  void Acknowledge(const Frame&) override {}
  void Cancel() override { cancel_.Notify(); }
  StreamInputStats Stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  // The next line without its newline; nullopt at end of input. Lines are
  // bounded by max_payload_bytes (times 4 for JSON's larger encoding).
  Result<std::optional<std::string>> ReadLine() {
    const size_t max_line = static_cast<size_t>(options_.max_payload_bytes) * 4;
    for (;;) {
      size_t nl = buf_.find('\n', scanned_);
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        return std::optional<std::string>(std::move(line));
      }
      scanned_ = buf_.size();
      if (eof_) {
        if (buf_.empty()) return std::optional<std::string>();
        std::string line = std::move(buf_);
        buf_.clear();
        scanned_ = 0;
        return std::optional<std::string>(std::move(line));
      }
      if (buf_.size() > max_line) {
        return ResourceExhaustedError("line " + std::to_string(line_no_ + 1) + " is longer than " +
                                      std::to_string(max_line) + " bytes");
      }
      char chunk[64 << 10];
      TELKIT_ASSIGN_OR_RETURN(size_t n, ReadSome(fd_, chunk, sizeof chunk, cancel_.fd()));
      if (n == 0) eof_ = true;
      buf_.append(chunk, n);
      std::lock_guard lock(mu_);
      stats_.bytes_read += n;
    }
  }

  UniqueFd owned_;
  int fd_;
  StreamInputOptions options_;
  Notifier cancel_;
  std::string buf_;
  size_t scanned_ = 0;
  bool eof_ = false;
  uint64_t line_no_ = 0;
  mutable std::mutex mu_;
  StreamInputStats stats_;
};

}  // namespace

Result<std::unique_ptr<StreamInput>> OpenJsonLinesInput(std::string_view spec, const StreamInputOptions& options) {
  TELKIT_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(spec));
  switch (e.kind) {
    case Endpoint::Kind::kStdio: return std::unique_ptr<StreamInput>(new JsonLinesInput(UniqueFd(), 0, options));
    case Endpoint::Kind::kFd: return std::unique_ptr<StreamInput>(new JsonLinesInput(UniqueFd(), e.fd, options));
    case Endpoint::Kind::kFile: {
      UniqueFd fd(::open(e.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError("open '" + e.path + "'");
      int raw = fd.get();
      return std::unique_ptr<StreamInput>(new JsonLinesInput(std::move(fd), raw, options));
    }
    default:
      return InvalidArgumentError("JSON lines are read from '-', a file or fd:N, not '" + std::string(spec) + "'");
  }
}

}  // namespace telkit
