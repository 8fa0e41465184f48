#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "common/fs/fault_injecting_file_system.h"
#include "common/tracestore/span_record.h"
#include "common/tracestore/trace_block.h"
#include "common/tracestore/trace_reader.h"
#include "common/tracestore/trace_store.h"
#include "common/test_support/temp_dir.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace pb = opentelemetry::proto;
using pb::collector::trace::v1::ExportTraceServiceRequest;

using test_support::TempDir;

std::string TraceId(int t) {
  std::string id(16, '\0');
  id[0] = 1;
  id[14] = static_cast<char>(t >> 8);
  id[15] = static_cast<char>(t);
  return id;
}
std::string SpanId(int t, int s) {
  std::string id(8, '\0');
  id[0] = 2;
  id[5] = static_cast<char>(t);
  id[6] = static_cast<char>(s >> 8);
  id[7] = static_cast<char>(s);
  return id;
}

struct SpanSpec {
  int trace = 0;
  int span = 0;
  int parent = -1;
  std::string service = "frontend";
  std::string name = "GET /";
  uint64_t start = 1'000'000'000;
  uint64_t duration = 1'000'000;
  int status = 0;
  std::string method;
};

std::string Request(const std::vector<SpanSpec>& specs) {
  ExportTraceServiceRequest req;
  for (const SpanSpec& s : specs) {
    auto* rs = req.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value(s.service);
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name("test-scope");
    auto* sp = ss->add_spans();
    sp->set_trace_id(TraceId(s.trace));
    sp->set_span_id(SpanId(s.trace, s.span));
    if (s.parent >= 0) sp->set_parent_span_id(SpanId(s.trace, s.parent));
    sp->set_name(s.name);
    sp->set_kind(pb::trace::v1::Span::SPAN_KIND_SERVER);
    sp->set_start_time_unix_nano(s.start);
    sp->set_end_time_unix_nano(s.start + s.duration);
    sp->mutable_status()->set_code(static_cast<pb::trace::v1::Status::StatusCode>(s.status));
    if (!s.method.empty()) {
      auto* a = sp->add_attributes();
      a->set_key("http.method");
      a->mutable_value()->set_string_value(s.method);
    }
    auto* ev = sp->add_events();
    ev->set_name("ev");
    ev->set_time_unix_nano(s.start + 1);
    auto* ln = sp->add_links();
    ln->set_trace_id(TraceId(999));
    ln->set_span_id(SpanId(99, 9));
  }
  return req.SerializeAsString();
}

// A trace of `n` spans: span 0 is the root.
std::vector<SpanSpec> Trace(int t, int n, uint64_t start = 1'000'000'000) {
  std::vector<SpanSpec> v;
  for (int i = 0; i < n; ++i) {
    SpanSpec s;
    s.trace = t;
    s.span = i;
    s.parent = i == 0 ? -1 : 0;
    s.service = i % 2 ? "backend" : "frontend";
    s.name = i == 0 ? "GET /" : "op" + std::to_string(i);
    s.start = start + i * 1000;
    s.duration = (i + 1) * 1'000'000;
    s.method = i == 0 ? "GET" : "";
    v.push_back(s);
  }
  return v;
}

struct Clock {
  std::atomic<int64_t> now{1'000'000'000'000};
  std::function<int64_t()> fn() {
    return [this] { return now.load(); };
  }
};

TraceStoreOptions Options(Clock* clock) {
  TraceStoreOptions o;
  o.idle_ns = 5'000'000'000;
  o.wal.segment_bytes = 64 * 1024;
  o.clock = clock->fn();
  return o;
}

TEST(SpanRecord, SplitKeepsEverySpanAsReceived) {
  std::string req = Request(Trace(1, 3));
  std::vector<SpanRecord> out;
  SplitStats st;
  ASSERT_TRUE(SplitTraceRequest(req, {}, &out, &st).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].service, "frontend");
  EXPECT_EQ(out[1].service, "backend");
  EXPECT_EQ(out[0].parent_span_id, "");
  EXPECT_EQ(out[1].parent_span_id, SpanId(1, 0));
  EXPECT_EQ(out[0].kind, 2);
  EXPECT_EQ(out[2].duration_ns(), 3'000'000u);
  ASSERT_EQ(out[0].attributes.size(), 1u);
  EXPECT_EQ(out[0].attributes[0], (std::pair<std::string, std::string>{"http.method", "GET"}));
  // The request rebuilt from the records (spans of one resource and scope
  // regrouped) splits into the same records byte for byte.
  auto back = SpansToTraceRequest(out);
  ASSERT_TRUE(back.ok());
  std::vector<SpanRecord> again;
  ASSERT_TRUE(SplitTraceRequest(*back, {}, &again, &st).ok());
  ASSERT_EQ(again.size(), 3u);
  std::set<std::string> a, b;
  for (auto& r : out) a.insert(r.otlp);
  for (auto& r : again) b.insert(r.otlp);
  EXPECT_EQ(a, b);
  EXPECT_FALSE(SplitTraceRequest("\xff\xff", {}, &out, &st).ok());
}

TEST(SpanRecord, MergesSpansOfOneResourceAndScope) {
  std::vector<SpanSpec> specs = Trace(1, 4);
  for (auto& s : specs) s.service = "one";
  std::vector<SpanRecord> out;
  SplitStats st;
  ASSERT_TRUE(SplitTraceRequest(Request(specs), {}, &out, &st).ok());
  ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(SpansToTraceRequest(out).value()));
  ASSERT_EQ(req.resource_spans_size(), 1);
  ASSERT_EQ(req.resource_spans(0).scope_spans_size(), 1);
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 4);
}

TEST(SpanRecord, LimitsAndBadIds) {
  ExportTraceServiceRequest req;
  auto* sp = req.add_resource_spans()->add_scope_spans()->add_spans();
  sp->set_trace_id(TraceId(1));
  sp->set_span_id(SpanId(1, 1));
  auto* a = sp->add_attributes();
  a->set_key("big");
  a->mutable_value()->set_string_value(std::string(10, 'x') + "\xc3\xa9");  // 12 bytes, é at 10..11
  auto* bad = req.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  bad->set_trace_id("short");
  bad->set_span_id(SpanId(1, 2));
  SpanLimits limits;
  limits.max_attribute_bytes = 11;
  std::vector<SpanRecord> out;
  SplitStats st;
  ASSERT_TRUE(SplitTraceRequest(req.SerializeAsString(), limits, &out, &st).ok());
  EXPECT_EQ(st.spans, 2u);
  EXPECT_EQ(st.invalid_spans, 1u);
  EXPECT_EQ(st.truncated_attributes, 1u);
  ASSERT_EQ(out.size(), 1u);
  pb::trace::v1::ResourceSpans rs;
  ASSERT_TRUE(rs.ParseFromString(out[0].otlp));
  EXPECT_EQ(rs.scope_spans(0).spans(0).attributes(0).value().string_value(), std::string(10, 'x'));
}

// The wire-format walk gives what the message-based path gives, and
// refuses what protobuf's parser refuses.
TEST(SpanRecord, FastSplitMatchesMessagePath) {
  ExportTraceServiceRequest req;
  req.ParseFromString(Request(Trace(1, 3)) + Request(Trace(2, 2)));
  auto* rs = req.mutable_resource_spans(0);
  rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  rs->mutable_scope_spans(0)->set_schema_url("scope-url");
  auto* kv = rs->mutable_resource()->add_attributes();
  kv->set_key("peer.service");
  kv->mutable_value()->set_int_value(-7);
  auto* sp = rs->mutable_scope_spans(0)->mutable_spans(0);
  auto* a = sp->add_attributes();
  a->set_key("http.status_code");
  a->mutable_value()->set_double_value(0.5);
  a = sp->add_attributes();
  a->set_key("db.system");
  a->mutable_value()->set_bool_value(true);
  a = sp->add_attributes();
  a->set_key("rpc.method");
  a->mutable_value()->mutable_array_value()->add_values()->set_string_value("x");
  sp->mutable_status()->set_message("boom");
  sp->mutable_status()->set_code(pb::trace::v1::Status::STATUS_CODE_ERROR);
  sp->set_kind(pb::trace::v1::Span::SPAN_KIND_CLIENT);
  req.mutable_resource_spans(1)->mutable_scope_spans(0)->mutable_spans(0)->set_span_id("short");  // invalid
  std::string bytes = req.SerializeAsString();
  std::vector<SpanRecord> fast, slow;
  SplitStats fs, ss;
  ASSERT_TRUE(SplitTraceRequest(bytes, {}, &fast, &fs).ok());
  ASSERT_TRUE(SplitTraceRequestSlow(bytes, {}, &slow, &ss).ok());
  ASSERT_EQ(fast.size(), 4u);
  ASSERT_EQ(fast.size(), slow.size());
  EXPECT_EQ(fs.spans, ss.spans);
  EXPECT_EQ(fs.invalid_spans, 1u);
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_EQ(fast[i].otlp, slow[i].otlp) << i;
    EXPECT_EQ(fast[i].trace_id, slow[i].trace_id);
    EXPECT_EQ(fast[i].span_id, slow[i].span_id);
    EXPECT_EQ(fast[i].parent_span_id, slow[i].parent_span_id);
    EXPECT_EQ(fast[i].service, slow[i].service);
    EXPECT_EQ(fast[i].name, slow[i].name);
    EXPECT_EQ(fast[i].kind, slow[i].kind);
    EXPECT_EQ(fast[i].status, slow[i].status);
    EXPECT_EQ(fast[i].start_ns, slow[i].start_ns);
    EXPECT_EQ(fast[i].end_ns, slow[i].end_ns);
    EXPECT_EQ(fast[i].attributes, slow[i].attributes) << i;
  }
  EXPECT_EQ(fast[0].status, 2);
  EXPECT_EQ(fast[0].attributes,
            (std::vector<std::pair<std::string, std::string>>{
                {"http.method", "GET"}, {"http.status_code", "0.5"}, {"db.system", "true"}, {"peer.service", "-7"}}));
  // Invalid UTF-8 in a span name, an event name or a nested attribute value:
  // refused as the parser refuses it.
  for (int where = 0; where < 3; ++where) {
    ExportTraceServiceRequest bad = req;
    auto* s0 = bad.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0);
    std::string invalid = "ok\xc3\x28";
    if (where == 0) s0->set_name(invalid);
    if (where == 1) s0->mutable_events(0)->set_name(invalid);
    if (where == 2)
      s0->mutable_attributes(3)->mutable_value()->mutable_array_value()->mutable_values(0)->set_string_value(invalid);
    std::string b;
    bad.SerializePartialToString(&b);
    std::vector<SpanRecord> out;
    SplitStats st;
    EXPECT_EQ(SplitTraceRequest(b, {}, &out, &st).code(), StatusCode::kInvalidArgument) << where;
    EXPECT_TRUE(out.empty());
  }
  // Truncated bytes: both paths refuse, nothing is added.
  std::vector<SpanRecord> out;
  SplitStats st;
  EXPECT_FALSE(SplitTraceRequest(std::string_view(bytes).substr(0, bytes.size() - 3), {}, &out, &st).ok());
  EXPECT_TRUE(out.empty());
}

TEST(SpanRecord, HexIds) {
  EXPECT_EQ(HexId(std::string("\x01\xab", 2)), "01ab");
  EXPECT_EQ(ParseHexId("01AB").value(), std::string("\x01\xab", 2));
  EXPECT_FALSE(ParseHexId("0g").ok());
  EXPECT_FALSE(ParseHexId("abc").ok());
}

// Golden bytes of docs/format/tracestore-block.md: a frame of two spans
// whose payloads are "AB" and "C".
TEST(TraceBlock, GoldenFrame) {
  SpanRecord a, b;
  a.otlp = "AB";
  b.otlp = "C";
  std::vector<const SpanRecord*> spans = {&a, &b};
  std::string frame = EncodeTraceFrame(spans, 3);
  // raw = 02 00 00 00 'A' 'B' 01 00 00 00 'C' (11 bytes)
  const std::string golden(
      "\x14\x00\x00\x00"  // compressed_len 20
      "\x00\xb9\xe3\xbe"  // crc32c of the zstd bytes
      "\x0b\x00\x00\x00"  // raw_len 11
      "\x28\xb5\x2f\xfd\x20\x0b\x59\x00\x00\x02\x00\x00\x00\x41\x42\x01\x00\x00\x00\x43",
      32);
  EXPECT_EQ(HexId(frame), HexId(golden));
  auto back = DecodeTraceFrame(frame);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (std::vector<std::string>{"AB", "C"}));
  std::string bad = frame;
  bad[15] ^= 1;
  EXPECT_EQ(DecodeTraceFrame(bad).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeTraceFrame(frame.substr(0, 20)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(TraceBlockFileName(42), "B00000042.tblk");
}

// Golden bytes of docs/format/tracestore-block.md: the index payload of a
// block holding one trace of one span, and a footer.
TEST(TraceBlock, GoldenIndexAndFooter) {
  SpanRecord r;
  r.trace_id = std::string(16, '\x01');
  r.span_id = std::string(8, '\x02');
  r.service = "svc";
  r.name = "op";
  r.kind = 2;
  r.start_ns = 5;
  r.end_ns = 8;
  r.attributes = {{"k", "v"}};
  std::vector<const SpanRecord*> spans = {&r};
  TraceBlockIndexBuilder b;
  b.AddTrace(r.trace_id, 8, 40, spans);
  std::string raw = EncodeTraceBlockIndexRaw(b.index());
  const std::string golden =
      "05000000"                                  // 5 strings
      "00000000" "03000000737663" "020000006f70"  // "", "svc", "op"
      "010000006b" "0100000076"                   // "k", "v"
      "01000000"                                  // 1 trace
      "01010101010101010101010101010101"          // trace id
      "0800000000000000" "28000000"               // frame offset 8, length 40
      "00000000" "01000000"                       // first span 0, 1 span
      "01000000" "02000000" "00000000"            // root service "svc", root name "op", reserved
      "0500000000000000" "0800000000000000"       // start 5, end 8
      "01000000"                                  // 1 span
      "01000000" "02000000" "02" "00"             // service, name, kind, status
      "0500000000000000" "0300000000000000"       // start, duration
      "01000000"                                  // attr_end
      "01000000" "03000000" "04000000";           // 1 attribute: "k" = "v"
  EXPECT_EQ(HexId(raw), golden);
  auto back = DecodeTraceBlockIndexRaw(raw);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->strings, b.index().strings);
  EXPECT_EQ(back->traces[0].trace_id, r.trace_id);
  EXPECT_EQ(back->traces[0].end_ns, 8);
  EXPECT_EQ(back->duration_ns, std::vector<uint64_t>{3});
  EXPECT_EQ(back->attrs, (std::vector<std::pair<uint32_t, uint32_t>>{{3, 4}}));
  // Every truncation and an out-of-range id are refused.
  for (size_t n = 0; n < raw.size(); ++n) {
    EXPECT_EQ(DecodeTraceBlockIndexRaw(raw.substr(0, n)).status().code(), StatusCode::kDataLoss) << n;
  }
  std::string bad = raw;
  bad[raw.size() - 4] = 9;  // attribute value id 9 of 5 strings
  EXPECT_EQ(DecodeTraceBlockIndexRaw(bad).status().code(), StatusCode::kDataLoss);
  auto frame = DecodeTraceBlockIndex(b.Finish(3));
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->name, std::vector<uint32_t>{2});

  std::string footer = EncodeTraceBlockFooter(0x1234, 0x56);
  EXPECT_EQ(HexId(footer), "3412000000000000" "5600000000000000" "544b545246545232");
  uint64_t off = 0, len = 0;
  ASSERT_TRUE(DecodeTraceBlockFooter(footer, &off, &len).ok());
  EXPECT_EQ(off, 0x1234u);
  EXPECT_EQ(len, 0x56u);
  footer[20] = 'x';
  EXPECT_EQ(DecodeTraceBlockFooter(footer, &off, &len).code(), StatusCode::kDataLoss);
}

// A block file as the store writes it: magic, frames, index, footer; the
// footer leads to the same index the catalogue names.
TEST(TraceBlock, FileLayoutAndDamagedIndex) {
  TempDir dir;
  Clock clock;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Append(Request(Trace(1, 3))).ok());
  ASSERT_TRUE((*store)->Append(Request(Trace(2, 2))).ok());
  ASSERT_EQ((*store)->CutAll().value(), 2u);
  const std::string path = dir.path() + "/blocks/" + TraceBlockFileName(1);
  auto x = ReadTraceBlockIndex(DefaultFileSystem(), path);
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  ASSERT_EQ(x->traces.size(), 2u);
  EXPECT_EQ(x->traces[0].trace_id, TraceId(1));
  EXPECT_EQ(x->traces[0].spans, 3u);
  EXPECT_EQ(x->traces[0].offset, kTraceBlockMagic.size());
  EXPECT_EQ(x->strings[x->traces[0].root_name], "GET /");
  EXPECT_EQ(x->service.size(), 5u);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_EQ(bytes.substr(0, 8), "TKTRBLK2");
  EXPECT_EQ(bytes.substr(bytes.size() - 8), "TKTRFTR2");
  auto frame = DecodeTraceFrame(std::string_view(bytes).substr(x->traces[1].offset, x->traces[1].length));
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->size(), 2u);
  // A flipped byte in the index frame: search reports DATA_LOSS (a new
  // reader, nothing cached), by-id reads of the frames still work.
  uint64_t off = 0, len = 0;
  ASSERT_TRUE(DecodeTraceBlockFooter(std::string_view(bytes).substr(bytes.size() - 24), &off, &len).ok());
  bytes[off + 20] ^= 0x40;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  auto reader = TraceReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Search(TraceSearchRequest{}).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ((*reader)->TraceById(TraceId(1)).value().size(), 3u);
}

// ForEachTrace: whole traces (block parts, late live spans), each once,
// chosen by one span meeting every condition; early stop.
TEST(TraceReader, ForEachTraceWholeTracesByPrefilter) {
  TempDir dir;
  Clock clock;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(store.ok());
  TraceStore* s = store->get();
  for (int t = 1; t <= 6; ++t) ASSERT_TRUE(s->Append(Request(Trace(t, 4, uint64_t(t) * 1'000'000'000))).ok());
  clock.now += 10'000'000'000;
  ASSERT_EQ(s->CutIdle().value(), 6u);  // block 1: traces 1-6
  SpanSpec late;
  late.trace = 2;
  late.span = 9;
  late.parent = 0;
  late.service = "db";
  late.name = "late";
  late.start = 2'000'500'000;
  ASSERT_TRUE(s->Append(Request({late})).ok());  // a live part of trace 2
  for (int t = 7; t <= 8; ++t) ASSERT_TRUE(s->Append(Request(Trace(t, 3, uint64_t(t) * 1'000'000'000))).ok());
  clock.now += 10'000'000'000;
  ASSERT_EQ(s->CutIdle().value(), 3u);  // block 2: late part of 2, traces 7-8
  for (int t = 9; t <= 10; ++t) ASSERT_TRUE(s->Append(Request(Trace(t, 2, uint64_t(t) * 1'000'000'000))).ok());
  ASSERT_TRUE(s->Append(Request({SpanSpec{.trace = 3, .span = 8, .parent = 0, .service = "db", .name = "late3",
                                          .start = 3'000'900'000}})).ok());  // live part of trace 3

  auto reader = TraceReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  auto collect = [&](int64_t start, int64_t end, const TraceSearchRequest& pre) {
    std::map<std::string, size_t> got;
    Status st = (*reader)->ForEachTrace(start, end, pre, [&](std::span<const SpanRecord> spans) {
      EXPECT_FALSE(spans.empty());
      EXPECT_TRUE(got.emplace(spans[0].trace_id, spans.size()).second) << "trace twice";
      for (size_t i = 1; i < spans.size(); ++i) {
        EXPECT_EQ(spans[i].trace_id, spans[0].trace_id);
        EXPECT_LE(spans[0].start_ns, spans[i].start_ns);
      }
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return got;
  };
  TraceSearchRequest all;
  all.limit = 1;  // ignored
  auto every = collect(0, INT64_MAX, all);
  ASSERT_EQ(every.size(), 10u);
  EXPECT_EQ(every[TraceId(2)], 5u);  // block 1 + block 2
  EXPECT_EQ(every[TraceId(3)], 5u);  // block 1 + live
  EXPECT_EQ(every[TraceId(9)], 2u);  // live only
  // Time range: spans starting in [2 s, 4 s): traces 2 and 3.
  EXPECT_EQ(collect(2'000'000'000, 4'000'000'000, all).size(), 2u);
  // Conditions on one span: service db and name late -> trace 2 only (via block 2).
  TraceSearchRequest db;
  db.service = "db";
  db.name = "late";
  auto late_only = collect(0, INT64_MAX, db);
  ASSERT_EQ(late_only.size(), 1u);
  EXPECT_EQ(late_only.begin()->second, 5u);
  db.name = "late3";  // matches a live span; whole trace 3 includes its block part
  EXPECT_EQ(collect(0, INT64_MAX, db)[TraceId(3)], 5u);
  // service backend with name "GET /" is on no one span (GET / is frontend).
  TraceSearchRequest none;
  none.service = "backend";
  none.name = "GET /";
  EXPECT_TRUE(collect(0, INT64_MAX, none).empty());
  // Durations, status, kind and attributes.
  TraceSearchRequest dur;
  dur.min_duration_ns = 3'500'000;  // span 3 of 4-span traces (4 ms)
  EXPECT_EQ(collect(0, INT64_MAX, dur).size(), 6u);
  dur.max_duration_ns = 3'900'000;
  EXPECT_TRUE(collect(0, INT64_MAX, dur).empty());
  TraceSearchRequest attr;
  attr.attributes = {{"http.method", "GET"}};
  attr.kind = 2;
  EXPECT_EQ(collect(0, INT64_MAX, attr).size(), 10u);
  attr.attributes = {{"http.method", "GET"}, {"http.method", "PUT"}};
  EXPECT_TRUE(collect(0, INT64_MAX, attr).empty());
  attr.attributes.clear();
  attr.status = 2;
  EXPECT_TRUE(collect(0, INT64_MAX, attr).empty());
  // Early stop.
  int calls = 0;
  ASSERT_TRUE(
      (*reader)->ForEachTrace(0, INT64_MAX, all, [&](std::span<const SpanRecord>) { return ++calls < 3; }).ok());
  EXPECT_EQ(calls, 3);
}

// A schema 1 catalogue (per-span rows, blocks without index) is refused by
// the writer and by readers, with the version in the message.
TEST(TraceCatalogue, RefusesSchemaOne) {
  TempDir dir;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() + "/catalogue.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db, "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL); PRAGMA user_version=1",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), {});
  EXPECT_EQ(store.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(store.status().ToString().find("schema version 1"), std::string::npos) << store.status().ToString();
  auto reader = TraceReader::Open(dir.path());
  EXPECT_EQ(reader.status().code(), StatusCode::kUnimplemented);
}

// A span without an end (end 0 < start) still bounds its block's and its
// trace's time range, so searches by time find it after the cut.
TEST(TraceStore, SpanWithoutEndIsFoundByTimeInBlocks) {
  TempDir dir;
  Clock clock;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(store.ok());
  ExportTraceServiceRequest req;
  req.ParseFromString(Request(Trace(1, 1, 5'000'000'000)));
  req.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_end_time_unix_nano(0);
  ASSERT_TRUE((*store)->Append(req.SerializeAsString()).ok());
  ASSERT_EQ((*store)->CutAll().value(), 1u);
  TraceSearchRequest q;
  q.start_ns = 4'000'000'000;
  q.end_ns = 6'000'000'000;
  EXPECT_EQ((*store)->Search(q).value().size(), 1u);
  auto reader = TraceReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Search(q).value().size(), 1u);
  int n = 0;
  ASSERT_TRUE((*reader)->ForEachTrace(q.start_ns, q.end_ns, {}, [&](std::span<const SpanRecord>) { return ++n; }).ok());
  EXPECT_EQ(n, 1);
}

TEST(TraceStore, LiveThenBlockThenReopen) {
  TempDir dir;
  Clock clock;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  TraceStore* s = store->get();
  ASSERT_TRUE(s->Append(Request(Trace(1, 5))).ok());
  ASSERT_TRUE(s->Append(Request(Trace(2, 3))).ok());
  auto t1 = s->TraceById(TraceId(1));
  ASSERT_TRUE(t1.ok());
  EXPECT_EQ(t1->size(), 5u);
  // Not idle yet: nothing cut.
  EXPECT_EQ(s->CutIdle().value(), 0u);
  clock.now += 6'000'000'000;
  ASSERT_TRUE(s->Append(Request(Trace(3, 2))).ok());  // trace 3 stays live
  EXPECT_EQ(s->CutIdle().value(), 2u);
  auto st = s->stats();
  EXPECT_EQ(st.blocks_written, 1u);
  EXPECT_EQ(st.traces_cut, 2u);
  EXPECT_EQ(st.spans_cut, 8u);
  EXPECT_EQ(st.live_traces, 1u);
  EXPECT_EQ(s->TraceById(TraceId(1)).value().size(), 5u);
  EXPECT_EQ(s->TraceById(TraceId(3)).value().size(), 2u);
  EXPECT_TRUE(s->TraceById(TraceId(4)).value().empty());
  // The block holds the spans as received.
  auto spans = s->TraceById(TraceId(2)).value();
  std::vector<SpanRecord> sent;
  SplitStats sst;
  ASSERT_TRUE(SplitTraceRequest(Request(Trace(2, 3)), {}, &sent, &sst).ok());
  ASSERT_EQ(spans.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(spans[i].otlp, sent[i].otlp);
  store->reset();
  // Reopen: blocks and the re-logged live trace 3 are there, once.
  auto again = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->TraceById(TraceId(1)).value().size(), 5u);
  EXPECT_EQ((*again)->TraceById(TraceId(3)).value().size(), 2u);
  EXPECT_EQ((*again)->stats().live_spans, 2u);
  EXPECT_EQ((*again)->stats().blocks, 1u);
}

TEST(TraceStore, DuplicatesStoredOnceAndLimitsCounted) {
  TempDir dir;
  Clock clock;
  TraceStoreOptions o = Options(&clock);
  o.max_spans_per_trace = 4;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  TraceStore* s = store->get();
  ASSERT_TRUE(s->Append(Request(Trace(1, 3))).ok());
  ASSERT_TRUE(s->Append(Request(Trace(1, 3))).ok());  // all three again
  ASSERT_TRUE(s->Append(Request(Trace(1, 6))).ok());  // 3 dup, 1 new, 2 over the limit
  auto st = s->stats();
  EXPECT_EQ(st.spans_received, 12u);
  EXPECT_EQ(st.spans_stored, 4u);
  EXPECT_EQ(st.spans_duplicate, 6u);
  EXPECT_EQ(st.spans_refused_trace_spans, 2u);
  EXPECT_EQ(s->TraceById(TraceId(1)).value().size(), 4u);
  EXPECT_EQ(s->Append("\x0a\xff").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->stats().requests_invalid, 1u);
  // Trace bytes limit.
  TempDir dir2;
  o.max_spans_per_trace = 0;
  std::vector<SpanRecord> one;
  SplitStats ss;
  ASSERT_TRUE(SplitTraceRequest(Request(Trace(5, 1)), {}, &one, &ss).ok());
  o.max_trace_bytes = one[0].otlp.size() * 2 + 10;
  auto store2 = TraceStore::Open(DefaultFileSystem(), dir2.path(), o);
  ASSERT_TRUE(store2.ok());
  ASSERT_TRUE((*store2)->Append(Request(Trace(5, 5))).ok());
  EXPECT_EQ((*store2)->stats().spans_refused_trace_bytes, 3u);
  EXPECT_EQ((*store2)->TraceById(TraceId(5)).value().size(), 2u);
}

TEST(TraceStore, SearchAndTags) {
  TempDir dir;
  Clock clock;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(store.ok());
  TraceStore* s = store->get();
  for (int t = 1; t <= 10; ++t) ASSERT_TRUE(s->Append(Request(Trace(t, 4, uint64_t(t) * 1'000'000'000))).ok());
  clock.now += 10'000'000'000;
  ASSERT_EQ(s->CutIdle().value(), 10u);
  for (int t = 11; t <= 12; ++t) ASSERT_TRUE(s->Append(Request(Trace(t, 4, uint64_t(t) * 1'000'000'000))).ok());
  TraceSearchRequest req;
  req.service = "backend";
  req.name = "op3";
  req.min_duration_ns = 4'000'000;
  req.limit = 5;
  auto r = s->Search(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].trace_id, TraceId(12));  // live, latest first
  EXPECT_EQ((*r)[2].trace_id, TraceId(10));  // from the block
  EXPECT_EQ((*r)[2].root_name, "GET /");
  EXPECT_EQ((*r)[2].root_service, "frontend");
  EXPECT_EQ((*r)[2].spans, 4u);
  EXPECT_EQ((*r)[2].matched, 1u);
  req.min_duration_ns = 5'000'000;  // op3 lasts 4 ms
  EXPECT_TRUE(s->Search(req).value().empty());
  TraceSearchRequest time;
  time.start_ns = 3'000'000'000;
  time.end_ns = 5'000'000'000;
  time.limit = 100;
  EXPECT_EQ(s->Search(time).value().size(), 2u);
  TraceSearchRequest attr;
  attr.attributes = {{"http.method", "GET"}};
  attr.limit = 100;
  EXPECT_EQ(s->Search(attr).value().size(), 12u);
  attr.attributes = {{"http.method", "POST"}};
  EXPECT_TRUE(s->Search(attr).value().empty());
  auto names = s->TagNames().value();
  EXPECT_NE(std::find(names.begin(), names.end(), "http.method"), names.end());
  EXPECT_EQ(s->TagValues("service.name", 10).value(), (std::vector<std::string>{"backend", "frontend"}));
  EXPECT_EQ(s->TagValues("http.method", 10).value(), (std::vector<std::string>{"GET"}));
}

TEST(TraceStore, RetentionByTimeAndSize) {
  TempDir dir;
  Clock clock;
  TraceStoreOptions o = Options(&clock);
  o.retention_ns = 3600LL * 1'000'000'000;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  TraceStore* s = store->get();
  int64_t now = clock.now;
  for (int b = 0; b < 3; ++b) {
    ASSERT_TRUE(s->Append(Request(Trace(b + 1, 3, uint64_t(now) + b * 10'000'000'000ull))).ok());
    clock.now += 10'000'000'000;
    ASSERT_EQ(s->CutIdle().value(), 1u);
  }
  EXPECT_EQ(s->stats().blocks, 3u);
  clock.now = now + 3600LL * 1'000'000'000 + 25'000'000'000;  // the first two are past retention
  ASSERT_TRUE(s->ApplyRetention().ok());
  EXPECT_EQ(s->stats().blocks, 1u);
  EXPECT_EQ(s->stats().blocks_removed, 2u);
  EXPECT_TRUE(s->TraceById(TraceId(1)).value().empty());
  EXPECT_EQ(s->TraceById(TraceId(3)).value().size(), 3u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path() + "/blocks"), {}), 1);
  store->reset();
  // Size: keep at most one block's bytes.
  o.max_block_bytes = 1;
  auto s2 = TraceStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE((*s2)->ApplyRetention().ok());
  EXPECT_EQ((*s2)->stats().blocks, 0u);
}

// Another process's view: TraceReader sees acknowledged live spans at once
// and blocks after a cut.
TEST(TraceReader, SeesLiveAndBlocks) {
  TempDir dir;
  Clock clock;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), Options(&clock));
  ASSERT_TRUE(store.ok());
  TraceStore* s = store->get();
  auto reader = TraceReader::Open(dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE(s->Append(Request(Trace(1, 4))).ok());
  EXPECT_EQ((*reader)->TraceById(TraceId(1)).value().size(), 4u);
  clock.now += 10'000'000'000;
  ASSERT_TRUE(s->Append(Request(Trace(2, 2))).ok());
  ASSERT_EQ(s->CutIdle().value(), 1u);
  SpanSpec late;
  late.trace = 1;
  late.span = 7;
  late.parent = 0;
  ASSERT_TRUE(s->Append(Request({late})).ok());  // a late span of the cut trace
  auto t1 = (*reader)->TraceById(TraceId(1));
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_EQ(t1->size(), 5u);
  EXPECT_EQ((*reader)->TraceById(TraceId(2)).value().size(), 2u);
  TraceSearchRequest req;
  req.limit = 10;
  EXPECT_EQ((*reader)->Search(req).value().size(), 2u);
  EXPECT_EQ((*reader)->TagValues("name", 10).value(), (std::vector<std::string>{"GET /", "op1", "op2", "op3"}));
  EXPECT_EQ(TraceReader::Open(dir.path() + "/nope").status().code(), StatusCode::kNotFound);
}

// Concurrent appends, cuts and reads: every acknowledged span readable.
TEST(TraceStore, ConcurrentAppendCutRead) {
  TempDir dir;
  Clock clock;
  TraceStoreOptions o = Options(&clock);
  o.idle_ns = 0;  // every cut takes everything idle "now"
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  TraceStore* s = store->get();
  std::atomic<bool> stop{false};
  std::thread cutter([&] {
    while (!stop) {
      ASSERT_TRUE(s->CutIdle().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int t = 0; t < 40; ++t) ASSERT_TRUE(s->Append(Request(Trace(w * 100 + t, 5))).ok());
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  cutter.join();
  for (int w = 0; w < 3; ++w) {
    for (int t = 0; t < 40; ++t) ASSERT_EQ(s->TraceById(TraceId(w * 100 + t)).value().size(), 5u) << w << " " << t;
  }
  store->reset();
  auto again = TraceStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(again.ok());
  for (int w = 0; w < 3; ++w) {
    for (int t = 0; t < 40; ++t) ASSERT_EQ((*again)->TraceById(TraceId(w * 100 + t)).value().size(), 5u);
  }
}

// Crash at every file-system operation of a workload with cuts: every
// acknowledged span is there after recovery, each once.
TEST(TraceStoreCrash, EveryCrashPointKeepsAcknowledgedSpans) {
  for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTornUnsynced, CrashMode::kZeroUnsynced}) {
    // Every operation in torn mode, every third in the others.
    for (uint64_t n = 1; n <= 120; n += mode == CrashMode::kTornUnsynced ? 1 : 3) {
      TempDir cat(/*in_memory=*/true);
      FaultInjectingFileSystem fs;
      Clock clock;
      TraceStoreOptions o = Options(&clock);
      o.catalogue_path = cat.path() + "/catalogue.db";
      o.wal.segment_bytes = 32 * 1024;
      std::map<int, int> acked;  // trace -> spans
      {
        auto store = TraceStore::Open(&fs, "db", o);
        ASSERT_TRUE(store.ok()) << store.status().ToString();
        fs.CrashAtOp(n, mode, n);
        for (int i = 0; i < 24; ++i) {
          if (!(*store)->Append(Request(Trace(i, 3 + i % 3))).ok()) break;
          acked[i] = 3 + i % 3;
          if (i % 6 == 5) {
            clock.now += 10'000'000'000;
            if (!(*store)->CutIdle().ok()) break;
          }
        }
        if (!fs.down()) fs.SimulateCrash(mode, n);
      }
      fs.Restart();
      auto store = TraceStore::Open(&fs, "db", o);
      if (!store.ok()) {
        auto l = fs.ListDir("db/wal");
        if (l.ok()) {
          for (auto& f : *l) std::cerr << f << "\n";
        } else {
          std::cerr << l.status().ToString() << "\n";
        }
        auto c = TraceCatalogue::Open(o.catalogue_path, true);
        std::cerr << "wal_start " << (*c)->WalStart().value() << " mode " << int(mode) << "\n";
      }
      ASSERT_TRUE(store.ok()) << "crash at op " << n << ": " << store.status().ToString();
      for (auto [t, count] : acked) {
        auto got = (*store)->TraceById(TraceId(t));
        ASSERT_TRUE(got.ok()) << "op " << n << ": " << got.status().ToString();
        ASSERT_EQ(got->size(), size_t(count)) << "op " << n << " trace " << t;
      }
      // Every block's index frame and footer survived too: search sees
      // every acknowledged trace (a torn index would be DATA_LOSS).
      TraceSearchRequest all;
      all.limit = 1000;
      auto found = (*store)->Search(all);
      ASSERT_TRUE(found.ok()) << "op " << n << ": " << found.status().ToString();
      ASSERT_GE(found->size(), acked.size()) << "op " << n;
      ASSERT_TRUE((*store)->Append(Request(Trace(500, 2))).ok());
      clock.now += 10'000'000'000;
      ASSERT_TRUE((*store)->CutIdle().ok());
    }
  }
}

// A real process killed with SIGKILL while ingesting and cutting.
TEST(TraceStoreCrash, KillNineMidIngest) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    TraceStoreOptions o;
    o.idle_ns = 0;
    o.wal.segment_bytes = 256 * 1024;
    auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), o);
    if (!store.ok()) _exit(2);
    for (int i = 0; i < 100000; ++i) {
      if (!(*store)->Append(Request(Trace(i, 4))).ok()) _exit(3);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
      if (i % 50 == 49 && !(*store)->CutIdle().ok()) _exit(5);
    }
    _exit(0);
  }
  close(fds[1]);
  int last = -1, v;
  while (last < 300 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
  kill(pid, SIGKILL);
  while (read(fds[0], &v, sizeof v) == sizeof v) last = v;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path(), {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int i = 0; i <= last; ++i) ASSERT_EQ((*store)->TraceById(TraceId(i)).value().size(), 4u) << i;
  EXPECT_GT((*store)->stats().blocks, 0u);
  // Another process's view of the same directory: every acknowledged trace
  // once through the block indexes and the WAL.
  auto reader = TraceReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  std::set<std::string> seen;
  ASSERT_TRUE((*reader)
                  ->ForEachTrace(0, INT64_MAX, {},
                                 [&](std::span<const SpanRecord> t) {
                                   EXPECT_EQ(t.size(), 4u);
                                   EXPECT_TRUE(seen.insert(t[0].trace_id).second);
                                   return true;
                                 })
                  .ok());
  for (int i = 0; i <= last; ++i) ASSERT_TRUE(seen.count(TraceId(i))) << i;
}

}  // namespace
}  // namespace telkit
