// TraceReader: reads a trace store directory from another process (or with
// the writer stopped): blocks through the catalogue (read-only SQLite
// snapshot) and live traces by replaying the WAL from the catalogue's
// wal_start, so a span is visible as soon as its Append was acknowledged.
// A read that races a block cut (wal_start moved, a file removed) is
// retried. See docs/tracestore.md, "Reading".
//
// Also the merge helpers the writer's own reads share.
//
// Thread-compatible.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/tracestore/span_record.h"
#include "common/tracestore/trace_catalogue.h"

namespace telkit {

// The spans in the frames `frames` of blocks under `blocks_dir`.
Status ReadFrameSpans(FileSystem* fs, const std::string& blocks_dir, std::span<const TraceFrameRef> frames,
                      std::vector<SpanRecord>* out);
// Keeps the first span of each span id, sorted by start time then span id.
void DedupSpans(std::vector<SpanRecord>* spans);
// Summaries of the traces among `spans` with a span matching `req`.
std::vector<TraceSummary> SearchSpans(const TraceSearchRequest& req, std::span<const SpanRecord* const> spans);
// `a` and `b` merged per trace id, latest start first, at most `limit`.
std::vector<TraceSummary> MergeSummaries(std::vector<TraceSummary> a, const std::vector<TraceSummary>& b,
                                         size_t limit);

class TraceReader {
 public:
  // NOT_FOUND when `dir` holds no catalogue.
  static Result<std::unique_ptr<TraceReader>> Open(std::string dir, FileSystem* fs = DefaultFileSystem(),
                                                   std::string catalogue_path = "");

  Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id);
  Result<std::vector<TraceSummary>> Search(const TraceSearchRequest& req);
  Result<std::vector<std::string>> TagNames();
  Result<std::vector<std::string>> TagValues(const std::string& tag, size_t limit);

 private:
  TraceReader(FileSystem* fs, std::string dir, std::unique_ptr<TraceCatalogue> c)
      : fs_(fs), dir_(std::move(dir)), catalogue_(std::move(c)) {}
  // The live spans (WAL from `wal_start`), deduplicated.
  Result<std::vector<SpanRecord>> LiveSpans(uint32_t wal_start);
  // Runs `read` (which reads the catalogue snapshot and then the WAL from
  // the wal_start passed) until wal_start did not move meanwhile.
  template <typename F>
  Status Consistent(F read);

  FileSystem* const fs_;
  const std::string dir_;
  std::unique_ptr<TraceCatalogue> catalogue_;
};

}  // namespace telkit
