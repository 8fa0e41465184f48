// Status and Result<T>: the one error type of telkit.
//
// Codes are the gRPC canonical codes, so a Status maps 1:1 onto what OTLP/gRPC
// returns and onto HTTP statuses (see HttpStatusFor in net/). Library code
// returns a Status with context instead of logging; only main() logs it.
// Thread-safety: values, safe to copy between threads.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace telkit {

// The gRPC canonical codes (same numbers).
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,            // the caller gave up (SIGTERM, client went away)
  kUnknown = 2,
  kInvalidArgument = 3,      // bad input: malformed bytes, bad flag value
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,    // a limit was hit (size, count, memory)
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,          // read past the end: truncated input, EOF
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,         // transient: retry later (queue full, peer down)
  kDataLoss = 15,            // corrupt stored or streamed data
  kUnauthenticated = 16,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "context: message" — for adding what was being done when it failed.
  Status WithContext(std::string_view context) const;
  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return {}; }
inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status OutOfRangeError(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status UnimplementedError(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status UnauthenticatedError(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status PermissionDeniedError(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }

// "what: strerror(err)" with a code chosen from the errno value
// (ENOENT -> NOT_FOUND, EACCES -> PERMISSION_DENIED, ENOSPC -> RESOURCE_EXHAUSTED, ...).
Status ErrnoError(std::string_view what, int err = errno);

// A value or the Status saying why there is none. Never holds an OK status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                       // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}                // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: !ok() for a meaningful status; returns OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace telkit

#define TELKIT_CONCAT_INNER_(a, b) a##b
#define TELKIT_CONCAT_(a, b) TELKIT_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define TELKIT_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::telkit::Status telkit_status_ = (expr);        \
    if (!telkit_status_.ok()) return telkit_status_; \
  } while (0)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define TELKIT_ASSIGN_OR_RETURN(lhs, expr) \
  TELKIT_ASSIGN_OR_RETURN_IMPL_(TELKIT_CONCAT_(telkit_result_, __LINE__), lhs, expr)
#define TELKIT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
