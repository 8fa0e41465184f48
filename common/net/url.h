// URL helpers shared by the HTTP clients (scraper, notifiers, health checks).
//
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace telkit {

// Percent-encodes everything but RFC 3986's unreserved characters
// (ALPHA DIGIT - . _ ~), for a query-string name or value or a path segment.
std::string UrlEncode(std::string_view s);

}  // namespace telkit
