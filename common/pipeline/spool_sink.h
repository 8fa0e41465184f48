// A socket output of tel-batch whose resend buffer is a Spool on disk
// (--spool-dir) instead of memory: the output takes a payload once it is
// durable in the spool, an I/O thread sends the spool's frames to the peer
// (unix:PATH dials, listen:unix:PATH and a listening systemd socket accept)
// and drops them from the spool as the peer acknowledges them, and after a
// reconnect or a restart of tel-batch it resends everything not yet
// acknowledged. docs/tel-batch.md "Delivery" says what this promises.
//
// Backpressure instead of loss: Send blocks while the spool is full
// (--spool-max-bytes) and, after a write error (ENOSPC, EIO), retries every
// 100 ms doubling to 5 s until the write succeeds or the output is
// cancelled; each failure is counted (tel_batch_spool_write_errors_total).
// Thread-safety: as OutputSink.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/pipeline/pipeline_output.h"

namespace telkit {

struct SpoolSettings {
  std::string dir;                      // empty: no spool
  uint64_t max_bytes = 1ull << 30;      // --spool-max-bytes
  uint64_t segment_bytes = 4ull << 20;  // a segment file takes no more frames once this big
  FileSystem* fs = nullptr;             // nullptr: DefaultFileSystem()
};

// Whether `target` is an output that can spool: unix:PATH, listen:unix:PATH,
// systemd[:NAME] (a listening socket).
bool CanSpool(const OutputTarget& target);

// The spool directory of one output: `dir`/ + the spec with every byte
// outside [A-Za-z0-9._-] turned into '_' (at most 64 of them) + '-' + the
// CRC-32C of the spec in 8 hex digits, e.g. "unix__run_x.sock-1a2b3c4d".
std::string SpoolDirFor(const std::string& dir, const std::string& spec);

// Opens the spool of `target` (creating `settings.dir` when missing; its
// parent must exist) and the socket. Errors of the spool (the file system)
// and of the endpoint; INVALID_ARGUMENT when !CanSpool(target).
Result<std::unique_ptr<OutputSink>> OpenSpoolSink(const OutputTarget& target, const SpoolSettings& settings);

}  // namespace telkit
