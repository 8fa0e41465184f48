#include "common/recv/otlp_http_server.h"

#include <httplib.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include "common/otlp/export_messages.h"
#include "common/recv/rpc_status.h"

namespace telkit {
namespace {

// Where the pre-routing handler puts the request's Content-Encoding so that
// httplib does not decompress the body itself (unbounded) before we see it.
constexpr char kStashedEncoding[] = "X-Telkit-Stashed-Content-Encoding";

constexpr char kProtobufType[] = "application/x-protobuf";
constexpr char kJsonType[] = "application/json";
constexpr char kRemoteWritePath[] = "/api/v1/write";
constexpr char kLokiPushPath[] = "/loki/api/v1/push";

bool IsRemoteWrite(const httplib::Request& req) { return req.path == kRemoteWritePath; }
bool IsLokiPush(const httplib::Request& req) { return req.path == kLokiPushPath; }


std::string Lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Remote write 1.0: application/x-protobuf, with no proto= parameter or the
// 1.0 message's ("prometheus.WriteRequest"); 2.0 names io.prometheus.write.v2.Request.
bool IsRemoteWrite1ContentType(std::string_view value) {
  const size_t semicolon = value.find(';');
  std::string type = Lowercase(Trim(value.substr(0, semicolon)));
  if (type != kProtobufType) return false;
  if (semicolon == std::string_view::npos) return true;
  std::string params = Lowercase(value.substr(semicolon + 1));
  const size_t proto = params.find("proto=");
  if (proto == std::string::npos) return true;
  std::string_view message = Trim(std::string_view(params).substr(proto + 6));
  message = message.substr(0, message.find(';'));
  return Trim(message) == "prometheus.writerequest";
}

std::optional<Signal> SignalForPath(std::string_view path) {
  if (path == "/v1/traces") return Signal::kTraces;
  if (path == "/v1/metrics") return Signal::kMetrics;
  if (path == "/v1/logs") return Signal::kLogs;
  if (path == kRemoteWritePath) return Signal::kPrometheusRemoteWrite;
  if (path == kLokiPushPath) return Signal::kLogs;
  return std::nullopt;
}

// The media type without parameters ("application/json; charset=utf-8").
std::optional<PayloadFormat> ParseContentType(std::string_view value) {
  std::string type = Lowercase(Trim(value.substr(0, value.find(';'))));
  if (type == kProtobufType || type == "application/protobuf") return PayloadFormat::kProtobuf;
  if (type == kJsonType) return PayloadFormat::kJson;
  return std::nullopt;
}

// Loki's rule: application/json is JSON, anything else (normally
// application/x-protobuf, or no Content-Type) a snappy-compressed protobuf.
// Other explicit types are refused here (415) rather than misread.
std::optional<PayloadFormat> ParseLokiContentType(std::string_view value) {
  std::string type = Lowercase(Trim(value.substr(0, value.find(';'))));
  if (type == kJsonType) return PayloadFormat::kJson;
  if (type.empty() || type == kProtobufType || type == "application/protobuf") return PayloadFormat::kProtobuf;
  return std::nullopt;
}

std::optional<ContentEncoding> ParseContentEncoding(std::string_view value) {
  std::string encoding = Lowercase(Trim(value));
  if (encoding.empty() || encoding == "identity") return ContentEncoding::kIdentity;
  if (encoding == "gzip" || encoding == "x-gzip") return ContentEncoding::kGzip;
  if (encoding == "deflate") return ContentEncoding::kDeflate;
  if (encoding == "snappy") return ContentEncoding::kSnappy;
  return std::nullopt;
}

bool HasBody(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  return req.get_header_value<uint64_t>("Content-Length") > 0;
}

// How much of a refused body is read and dropped to keep the connection
// usable (and to let the client read the answer: closing a socket with unread
// input resets it, and the client may lose the response). Beyond it the
// connection is closed. Also httplib's payload limit: our own readers stop
// at max_request_bytes long before.
uint64_t DiscardLimitFor(const OtlpReceiverOptions& options) {
  return std::max<uint64_t>(64ull << 20, 4 * options.max_request_bytes);
}

struct Refusal {
  RefuseReason reason;
  std::string message;
};

class Handlers {
 public:
  Handlers(OtlpReceiver& receiver, const BearerTokenCheck* auth) : receiver_(receiver), auth_(auth) {}

  // Refusals that the method, path and headers decide. `encoding` is the
  // request's Content-Encoding value.
  std::optional<Refusal> CheckHeaders(const httplib::Request& req, const std::string& encoding) const {
    std::optional<Signal> signal = SignalForPath(req.path);
    if (!signal) return Refusal{RefuseReason::kNotFound, "unknown path '" + req.path + "'"};
    if (req.method != "POST") {
      return Refusal{RefuseReason::kMethodNotAllowed, "method " + req.method + " is not allowed; use POST"};
    }
    if (auth_ != nullptr && !auth_->Check(req.get_header_value("Authorization"))) {
      return Refusal{RefuseReason::kUnauthenticated, "missing or invalid bearer token"};
    }
    const std::string content_type = req.get_header_value("Content-Type");
    const bool loki = IsLokiPush(req);
    if (loki) {
      if (!ParseLokiContentType(content_type)) {
        return Refusal{RefuseReason::kUnsupportedMediaType,
                       "unsupported content type '" + content_type +
                           "'; Loki push takes application/json or application/x-protobuf (snappy)"};
      }
    } else if (*signal == Signal::kPrometheusRemoteWrite) {
      if (!IsRemoteWrite1ContentType(content_type)) {
        return Refusal{RefuseReason::kUnsupportedMediaType,
                       "unsupported content type '" + content_type +
                           "'; remote write 1.0 takes application/x-protobuf (prometheus.WriteRequest)"};
      }
      if (Lowercase(Trim(encoding)) != "snappy") {
        return Refusal{RefuseReason::kUnsupportedEncoding,
                       "unsupported content encoding '" + encoding + "'; remote write takes snappy"};
      }
    } else if (!ParseContentType(content_type)) {
      return Refusal{RefuseReason::kUnsupportedMediaType,
                     "unsupported content type '" + content_type + "'; use application/x-protobuf or application/json"};
    }
    std::optional<ContentEncoding> parsed_encoding = ParseContentEncoding(encoding);
    if (!parsed_encoding ||
        (!loki && *signal != Signal::kPrometheusRemoteWrite && *parsed_encoding == ContentEncoding::kSnappy)) {
      return Refusal{RefuseReason::kUnsupportedEncoding,
                     "unsupported content encoding '" + encoding + "'; use gzip or identity"};
    }
    const uint64_t length = req.get_header_value<uint64_t>("Content-Length");
    if (length > receiver_.options().max_request_bytes) {
      return Refusal{RefuseReason::kTooLarge, "request body of " + std::to_string(length) +
                                                  " bytes exceeds the limit of " +
                                                  std::to_string(receiver_.options().max_request_bytes) + " bytes"};
    }
    if (receiver_.Draining()) return Refusal{RefuseReason::kDraining, "receiver is shutting down, retry later"};
    return std::nullopt;
  }

  // Writes a refusal in the request's format (text for an unknown one).
  void WriteRefusal(const httplib::Request& req, httplib::Response& res, RefuseReason reason,
                    const std::string& message, int retry_after_seconds) const {
    receiver_.CountRefusal(Transport::kHttp, reason);
    res.status = HttpStatusFor(reason);
    const StatusCode code = StatusCodeFor(reason);
    if (code == StatusCode::kUnavailable && retry_after_seconds == 0) {
      retry_after_seconds = receiver_.options().retry_after_seconds;
    }
    if (IsLokiPush(req) && code == StatusCode::kUnavailable) res.status = 429;  // what Loki clients retry on
    std::optional<PayloadFormat> format = ParseContentType(req.get_header_value("Content-Type"));
    if (!format || IsRemoteWrite(req) || IsLokiPush(req)) {  // remote write answers errors in plain text, as Prometheus
      res.body = message + "\n";
      res.set_header("Content-Type", "text/plain; charset=utf-8");
    } else if (*format == PayloadFormat::kJson) {
      res.body = EncodeRpcStatusJson(code, message, retry_after_seconds);
      res.set_header("Content-Type", kJsonType);
    } else {
      res.body = EncodeRpcStatus(code, message, retry_after_seconds);
      res.set_header("Content-Type", kProtobufType);
    }
    if (retry_after_seconds > 0) res.set_header("Retry-After", std::to_string(retry_after_seconds));
    if (reason == RefuseReason::kUnauthenticated) res.set_header("WWW-Authenticate", "Bearer");
    if (reason == RefuseReason::kMethodNotAllowed) res.set_header("Allow", "POST");
  }

  uint64_t DiscardLimit() const { return DiscardLimitFor(receiver_.options()); }

  // Reads and drops the body of a refused request, unless it is beyond
  // DiscardLimit() or the receiver is draining: then the connection closes.
  void DiscardBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                   RefuseReason reason) const {
    if (!HasBody(req)) return;
    const uint64_t limit = DiscardLimit();
    // httplib reads multipart bodies only through a multipart parser.
    if (reason != RefuseReason::kDraining && !req.is_multipart_form_data() &&
        req.get_header_value<uint64_t>("Content-Length") <= limit) {
      uint64_t seen = 0;
      if (reader([&](const char*, size_t n) { return (seen += n) <= limit; })) return;
    }
    res.set_header("Connection", "close");
  }

  void Refuse(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
              const Refusal& refusal) const {
    WriteRefusal(req, res, refusal.reason, refusal.message, 0);
    DiscardBody(req, res, reader, refusal.reason);
  }

  // Any request with a body goes through here (POST/PUT/PATCH/DELETE).
  void HandleWithBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    OtlpReceiver::InFlight in_flight = receiver_.TrackRequest(Transport::kHttp);
    const std::string encoding_value = req.get_header_value(kStashedEncoding);
    if (std::optional<Refusal> refusal = CheckHeaders(req, encoding_value)) {
      Refuse(req, res, reader, *refusal);
      return;
    }
    ExportRequest request;
    request.signal = *SignalForPath(req.path);
    request.transport = Transport::kHttp;
    const bool loki = IsLokiPush(req);
    request.format = loki ? *ParseLokiContentType(req.get_header_value("Content-Type"))
                          : *ParseContentType(req.get_header_value("Content-Type"));
    request.encoding = *ParseContentEncoding(encoding_value);

    const uint64_t limit = receiver_.options().max_request_bytes;
    const uint64_t discard_limit = DiscardLimit();
    request.body.reserve(std::min(limit, req.get_header_value<uint64_t>("Content-Length")));
    // Past the limit (possible only for chunked bodies: a Content-Length
    // over it was refused above) the rest is read and dropped.
    bool too_large = false;
    uint64_t seen = 0;
    const bool complete = reader([&](const char* data, size_t n) {
      seen += n;
      if (!too_large && seen <= limit) {
        request.body.append(data, n);
        return true;
      }
      if (!too_large) {
        too_large = true;
        request.body = std::string();
      }
      return seen <= discard_limit;
    });
    if (too_large) {
      if (!complete) res.set_header("Connection", "close");
      WriteRefusal(req, res, RefuseReason::kTooLarge,
                   "request body exceeds the limit of " + std::to_string(limit) + " bytes", 0);
      return;
    }
    if (!complete) {
      res.set_header("Connection", "close");
      WriteRefusal(req, res, RefuseReason::kAborted, "cannot read the request body", 0);
      return;
    }

    if (loki) {
      WriteLokiAnswer(res, receiver_.ExportLokiPush(std::move(request)));
      return;
    }
    const Signal signal = request.signal;
    const PayloadFormat format = request.format;
    ExportOutcome outcome = receiver_.Export(std::move(request));
    if (signal == Signal::kPrometheusRemoteWrite) {
      WriteRemoteWriteAnswer(res, outcome);
      return;
    }
    if (!outcome.status.ok()) {
      // Export counted the refusal; write without counting again.
      res.status = HttpStatusFor(outcome.reason);
      WriteBody(res, format,
                EncodeRpcStatus(outcome.status.code(), outcome.status.message(), outcome.retry_after_seconds),
                EncodeRpcStatusJson(outcome.status.code(), outcome.status.message(), outcome.retry_after_seconds));
      if (outcome.retry_after_seconds > 0) {
        res.set_header("Retry-After", std::to_string(outcome.retry_after_seconds));
      }
      return;
    }
    res.status = 200;
    if (format == PayloadFormat::kJson) {
      res.body = EncodeExportResponseJson(signal, outcome.rejected_items, outcome.rejected_message);
      res.set_header("Content-Type", kJsonType);
    } else {
      res.body = EncodeExportResponse(signal, outcome.rejected_items, outcome.rejected_message);
      res.set_header("Content-Type", kProtobufType);
    }
  }

  // GET, HEAD, OPTIONS: never an export.
  void HandleWithoutBody(const httplib::Request& req, httplib::Response& res) const {
    if (std::optional<Refusal> refusal = CheckHeaders(req, "")) {
      WriteRefusal(req, res, refusal->reason, refusal->message, 0);
    }
  }

  // Before routing: a body on a method that has no content-reader route
  // would be read whole into memory by httplib, so it is refused unread;
  // and the Content-Encoding is taken aside (see kStashedEncoding).
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req, httplib::Response& res) const {
    // The request object is not const where httplib owns it; this handler is
    // the one place that changes it.
    auto& mutable_req = const_cast<httplib::Request&>(req);
    mutable_req.headers.erase(kStashedEncoding);
    if (req.has_header("Content-Encoding")) {
      std::string encoding = req.get_header_value("Content-Encoding");
      mutable_req.headers.erase("Content-Encoding");
      mutable_req.set_header(kStashedEncoding, encoding);
    }
    const bool body_method =
        req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE";
    if (!body_method && HasBody(req)) {
      const bool known = SignalForPath(req.path).has_value();
      WriteRefusal(req, res, known ? RefuseReason::kMethodNotAllowed : RefuseReason::kNotFound,
                   known ? "method " + req.method + " is not allowed; use POST" : "unknown path '" + req.path + "'", 0);
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  // Expect: 100-continue: answer a refusal before the client sends the body.
  int Expect100(const httplib::Request& req, httplib::Response& res) const {
    std::optional<Refusal> refusal = CheckHeaders(req, req.get_header_value("Content-Encoding"));
    if (!refusal) return 100;
    WriteRefusal(req, res, refusal->reason, refusal->message, 0);
    res.set_header("Connection", "close");
    return res.status;
  }

  // httplib's own errors (bad request line or headers, ...): count them and
  // say something. Responses written above already have a body; they are
  // "handled" too, because only then does httplib add the Content-Length of
  // a response it writes outside routing (the Expect: 100-continue refusal).
  httplib::Server::HandlerResponse OnError(const httplib::Request& req, httplib::Response& res) const {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Handled;
    RefuseReason reason = RefuseReason::kBadHttp;
    if (res.status == 413) reason = RefuseReason::kTooLarge;
    if (res.status == 404) reason = RefuseReason::kNotFound;
    receiver_.CountRefusal(Transport::kHttp, reason);
    res.body = std::string(RefuseReasonName(reason)) + "\n";
    res.set_header("Content-Type", "text/plain; charset=utf-8");
    res.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  }

 private:
  static void WriteBody(httplib::Response& res, PayloadFormat format, std::string protobuf, std::string json) {
    if (format == PayloadFormat::kJson) {
      res.body = std::move(json);
      res.set_header("Content-Type", kJsonType);
    } else {
      res.body = std::move(protobuf);
      res.set_header("Content-Type", kProtobufType);
    }
  }

  // Prometheus' answers: 204 without a body on success (bad series dropped
  // and counted, as Prometheus does), the error text otherwise.
  static void WriteRemoteWriteAnswer(httplib::Response& res, const ExportOutcome& outcome) {
    if (outcome.status.ok()) {
      res.status = 204;
      return;
    }
    res.status = HttpStatusFor(outcome.reason);
    res.body = std::string(outcome.status.message()) + "\n";
    res.set_header("Content-Type", "text/plain; charset=utf-8");
    if (outcome.retry_after_seconds > 0) res.set_header("Retry-After", std::to_string(outcome.retry_after_seconds));
  }

  // Loki's answers: 204 without a body when every entry was kept; 400 with
  // the first reason when some were dropped (the others are stored, as Loki
  // does); errors in plain text, and 429 with Retry-After where OTLP says 503.
  static void WriteLokiAnswer(httplib::Response& res, const ExportOutcome& outcome) {
    if (outcome.status.ok() && outcome.rejected_items == 0) {
      res.status = 204;
      return;
    }
    std::string message;
    if (outcome.status.ok()) {
      res.status = 400;
      message = outcome.rejected_message;
      if (outcome.rejected_items > 1) message += fmt::format(" (and {} more entries)", outcome.rejected_items - 1);
    } else {
      res.status = HttpStatusFor(outcome.reason);
      if (outcome.status.code() == StatusCode::kUnavailable) res.status = 429;
      message = outcome.status.message();
    }
    res.body = message + "\n";
    res.set_header("Content-Type", "text/plain; charset=utf-8");
    if (outcome.retry_after_seconds > 0) res.set_header("Retry-After", std::to_string(outcome.retry_after_seconds));
  }

  OtlpReceiver& receiver_;
  const BearerTokenCheck* auth_;
};

}  // namespace

Result<std::unique_ptr<OtlpHttpServer>> OtlpHttpServer::Start(const OtlpHttpServerOptions& options,
                                                              OtlpReceiver& receiver, const BearerTokenCheck* auth) {
  std::unique_ptr<httplib::Server> server;
  if (options.tls.enabled()) {
    TELKIT_RETURN_IF_ERROR(ValidateTlsFiles(options.tls));
    auto tls_server =
        std::make_unique<httplib::SSLServer>(options.tls.cert.c_str(), options.tls.key.c_str(),
                                             options.tls.client_ca.empty() ? nullptr : options.tls.client_ca.c_str());
    if (!tls_server->is_valid()) {
      return InvalidArgumentError("cannot load TLS certificate '" + options.tls.cert + "' with key '" +
                                  options.tls.key + "'");
    }
    server = std::move(tls_server);
  } else {
    server = std::make_unique<httplib::Server>();
  }

  const size_t threads = static_cast<size_t>(std::max(1, options.threads));
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_read_timeout(options.read_timeout_seconds, 0);
  server->set_write_timeout(options.write_timeout_seconds, 0);
  server->set_keep_alive_timeout(options.keep_alive_timeout_seconds);
  server->set_keep_alive_max_count(static_cast<size_t>(std::max(1, options.keep_alive_max_requests)));
  server->set_payload_max_length(DiscardLimitFor(receiver.options()));
  server->set_tcp_nodelay(true);

  // The handlers live as long as the server (shared by its closures).
  auto handlers = std::make_shared<Handlers>(receiver, auth);
  server->set_pre_routing_handler(
      [handlers](const httplib::Request& req, httplib::Response& res) { return handlers->PreRoute(req, res); });
  server->set_expect_100_continue_handler(
      [handlers](const httplib::Request& req, httplib::Response& res) { return handlers->Expect100(req, res); });
  server->set_error_handler(httplib::Server::HandlerWithResponse(
      [handlers](const httplib::Request& req, httplib::Response& res) { return handlers->OnError(req, res); }));
  server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.body = "internal error\n";
    res.set_header("Content-Type", "text/plain; charset=utf-8");
  });
  const httplib::Server::HandlerWithContentReader with_body =
      [handlers](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        handlers->HandleWithBody(req, res, reader);
      };
  const httplib::Server::Handler without_body = [handlers](const httplib::Request& req, httplib::Response& res) {
    handlers->HandleWithoutBody(req, res);
  };
  server->Post(".*", with_body);
  server->Put(".*", with_body);
  server->Patch(".*", with_body);
  server->Delete(".*", with_body);
  // A POST without a body (no Content-Length) lands on the plain handlers.
  server->Post(".*", [handlers, with_body](const httplib::Request& req, httplib::Response& res) {
    httplib::ContentReader empty([](httplib::ContentReceiver) { return true; },
                                 [](httplib::MultipartContentHeader, httplib::ContentReceiver) { return true; });
    with_body(req, res, empty);
  });
  server->Get(".*", without_body);
  server->Options(".*", without_body);

  TELKIT_ASSIGN_OR_RETURN(auto runner,
                          HttpServerRunner::Start(std::move(server), options.listen, options.listen_backlog));
  return std::unique_ptr<OtlpHttpServer>(new OtlpHttpServer(std::move(runner)));
}

OtlpHttpServer::~OtlpHttpServer() { Stop(); }

}  // namespace telkit
