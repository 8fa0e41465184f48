#include "common/scrape/scrape_config.h"

#include <glob.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "common/net/url.h"

namespace telkit {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgumentError(where + ": " + what);
}

Status CheckKeys(const YAML::Node& node, const std::string& where, std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) return Bad(where, "not a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Bad(where, "unknown key '" + key + "'");
    }
  }
  return OkStatus();
}

Result<std::vector<std::string>> StringList(const YAML::Node& n, const std::string& where) {
  std::vector<std::string> out;
  if (!n) return out;
  if (!n.IsSequence()) return Bad(where, "not a list");
  for (const auto& v : n) out.push_back(v.as<std::string>());
  return out;
}

Result<Labels> LabelMap(const YAML::Node& n, const std::string& where) {
  std::vector<Label> ls;
  if (!n || n.IsNull()) return Labels();
  if (!n.IsMap()) return Bad(where, "labels are not a mapping");
  for (const auto& kv : n) {
    std::string name = kv.first.as<std::string>();
    if (!IsValidLabelName(name)) return Bad(where, "invalid label name '" + name + "'");
    ls.push_back({name, kv.second.as<std::string>()});
  }
  Result<Labels> l = Labels::FromUnsorted(std::move(ls));
  if (!l.ok()) return Bad(where, std::string(l.status().message()));
  return l;
}

Result<std::vector<RelabelRule>> RelabelList(const YAML::Node& n, const std::string& where) {
  std::vector<RelabelRule> out;
  if (!n) return out;
  if (!n.IsSequence()) return Bad(where, "not a list");
  size_t i = 0;
  for (const auto& r : n) {
    std::string at = where + "[" + std::to_string(i++) + "]";
    TELKIT_RETURN_IF_ERROR(
        CheckKeys(r, at, {"source_labels", "separator", "regex", "target_label", "replacement", "action"}));
    RelabelRuleSpec spec;
    TELKIT_ASSIGN_OR_RETURN(spec.source_labels, StringList(r["source_labels"], at + ".source_labels"));
    if (r["separator"]) spec.separator = r["separator"].as<std::string>();
    if (r["regex"]) spec.regex = r["regex"].as<std::string>();
    if (r["target_label"]) spec.target_label = r["target_label"].as<std::string>();
    if (r["replacement"]) spec.replacement = r["replacement"].as<std::string>();
    if (r["action"]) {
      Result<RelabelAction> a = ParseRelabelAction(r["action"].as<std::string>());
      if (!a.ok()) return Bad(at, std::string(a.status().message()));
      spec.action = *a;
    }
    Result<RelabelRule> rule = RelabelRule::Compile(spec);
    if (!rule.ok()) return Bad(at, std::string(rule.status().message()));
    out.push_back(std::move(*rule));
  }
  return out;
}

Result<std::chrono::milliseconds> Duration(const YAML::Node& n, const std::string& where) {
  Result<std::chrono::milliseconds> d = ParsePromDuration(n.as<std::string>());
  if (!d.ok()) return Bad(where, std::string(d.status().message()));
  return d;
}

Result<ScrapeConfigFile> Parse(const YAML::Node& root) {
  ScrapeConfigFile file;
  if (!root || root.IsNull()) return file;
  TELKIT_RETURN_IF_ERROR(CheckKeys(root, "scrape config", {"global", "scrape_configs"}));
  std::chrono::milliseconds interval{std::chrono::minutes(1)}, timeout{std::chrono::seconds(10)};
  if (const YAML::Node g = root["global"]) {
    TELKIT_RETURN_IF_ERROR(CheckKeys(g, "global", {"scrape_interval", "scrape_timeout", "external_labels"}));
    if (g["scrape_interval"]) {
      TELKIT_ASSIGN_OR_RETURN(interval, Duration(g["scrape_interval"], "global.scrape_interval"));
    }
    if (g["scrape_timeout"]) {
      TELKIT_ASSIGN_OR_RETURN(timeout, Duration(g["scrape_timeout"], "global.scrape_timeout"));
    }
  }
  const YAML::Node jobs = root["scrape_configs"];
  if (jobs && !jobs.IsSequence()) return Bad("scrape_configs", "not a list");
  std::set<std::string> names;
  size_t i = 0;
  for (const auto& j : jobs) {
    std::string at = "scrape_configs[" + std::to_string(i++) + "]";
    TELKIT_RETURN_IF_ERROR(CheckKeys(j, at,
                                     {"job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme",
                                      "honor_labels", "params", "static_configs", "file_sd_configs",
                                      "relabel_configs", "metric_relabel_configs"}));
    ScrapeJobConfig job;
    if (!j["job_name"]) return Bad(at, "job_name is required");
    job.job_name = j["job_name"].as<std::string>();
    at += " (job '" + job.job_name + "')";
    if (job.job_name.empty() || !names.insert(job.job_name).second) return Bad(at, "job_name empty or used twice");
    job.interval = interval;
    job.timeout = timeout;
    if (j["scrape_interval"]) {
      TELKIT_ASSIGN_OR_RETURN(job.interval, Duration(j["scrape_interval"], at + ".scrape_interval"));
    }
    if (j["scrape_timeout"]) {
      TELKIT_ASSIGN_OR_RETURN(job.timeout, Duration(j["scrape_timeout"], at + ".scrape_timeout"));
    } else {
      job.timeout = std::min(job.timeout, job.interval);
    }
    if (job.interval.count() <= 0) return Bad(at, "scrape_interval must be positive");
    if (job.timeout > job.interval) return Bad(at, "scrape_timeout is greater than scrape_interval");
    if (j["metrics_path"]) job.metrics_path = j["metrics_path"].as<std::string>();
    if (job.metrics_path.empty() || job.metrics_path[0] != '/') return Bad(at, "metrics_path must start with '/'");
    if (j["scheme"]) job.scheme = j["scheme"].as<std::string>();
    if (job.scheme != "http" && job.scheme != "https") return Bad(at, "scheme must be http or https");
    if (j["honor_labels"]) job.honor_labels = j["honor_labels"].as<bool>();
    if (const YAML::Node p = j["params"]) {
      if (!p.IsMap()) return Bad(at + ".params", "not a mapping");
      for (const auto& kv : p) {
        TELKIT_ASSIGN_OR_RETURN(job.params[kv.first.as<std::string>()], StringList(kv.second, at + ".params"));
      }
    }
    if (const YAML::Node sc = j["static_configs"]) {
      if (!sc.IsSequence()) return Bad(at + ".static_configs", "not a list");
      for (const auto& g : sc) {
        TELKIT_RETURN_IF_ERROR(CheckKeys(g, at + ".static_configs", {"targets", "labels"}));
        TargetGroup group;
        TELKIT_ASSIGN_OR_RETURN(group.targets, StringList(g["targets"], at + ".static_configs.targets"));
        TELKIT_ASSIGN_OR_RETURN(group.labels, LabelMap(g["labels"], at + ".static_configs.labels"));
        job.static_groups.push_back(std::move(group));
      }
    }
    if (const YAML::Node fs = j["file_sd_configs"]) {
      if (!fs.IsSequence()) return Bad(at + ".file_sd_configs", "not a list");
      for (const auto& f : fs) {
        TELKIT_RETURN_IF_ERROR(CheckKeys(f, at + ".file_sd_configs", {"files", "refresh_interval"}));
        TELKIT_ASSIGN_OR_RETURN(std::vector<std::string> files, StringList(f["files"], at + ".file_sd_configs.files"));
        job.file_sd_files.insert(job.file_sd_files.end(), files.begin(), files.end());
        if (f["refresh_interval"]) {
          TELKIT_ASSIGN_OR_RETURN(job.file_sd_refresh, Duration(f["refresh_interval"], at + ".refresh_interval"));
        }
      }
    }
    TELKIT_ASSIGN_OR_RETURN(job.relabel, RelabelList(j["relabel_configs"], at + ".relabel_configs"));
    TELKIT_ASSIGN_OR_RETURN(job.metric_relabel, RelabelList(j["metric_relabel_configs"], at + ".metric_relabel_configs"));
    file.jobs.push_back(std::move(job));
  }
  return file;
}

std::string ReadAll(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::chrono::milliseconds> ParsePromDuration(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("empty duration");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) return InvalidArgumentError("invalid duration '" + std::string(text) + "'");
    int64_t n = std::stoll(std::string(text.substr(start, i - start)));
    std::string unit;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) unit += text[i++];
    int64_t ms;
    if (unit == "ms") ms = 1;
    else if (unit == "s") ms = 1000;
    else if (unit == "m") ms = 60'000;
    else if (unit == "h") ms = 3'600'000;
    else if (unit == "d") ms = 86'400'000;
    else if (unit == "w") ms = 7 * 86'400'000LL;
    else if (unit == "y") ms = 365 * 86'400'000LL;
    else return InvalidArgumentError("invalid duration '" + std::string(text) + "'");
    total += n * ms;
  }
  return std::chrono::milliseconds(total);
}

Result<ScrapeConfigFile> ParseScrapeConfig(std::string_view yaml) {
  try {
    return Parse(YAML::Load(std::string(yaml)));
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("scrape config: ") + e.what());
  }
}

Result<ScrapeConfigFile> LoadScrapeConfig(const std::string& path) {
  bool ok = false;
  std::string text = ReadAll(path, &ok);
  if (!ok) return NotFoundError("cannot read scrape config '" + path + "'");
  Result<ScrapeConfigFile> c = ParseScrapeConfig(text);
  if (!c.ok()) return InvalidArgumentError("'" + path + "': " + std::string(c.status().message()));
  return c;
}

Result<std::vector<TargetGroup>> ParseFileSd(std::string_view text, const std::string& source) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    std::vector<TargetGroup> out;
    if (root.IsNull()) return out;
    if (!root.IsSequence()) return Bad("'" + source + "'", "not a list of target groups");
    for (const auto& g : root) {
      TELKIT_RETURN_IF_ERROR(CheckKeys(g, "'" + source + "'", {"targets", "labels"}));
      TargetGroup group;
      group.source = source;
      TELKIT_ASSIGN_OR_RETURN(group.targets, StringList(g["targets"], "'" + source + "' targets"));
      TELKIT_ASSIGN_OR_RETURN(group.labels, LabelMap(g["labels"], "'" + source + "' labels"));
      out.push_back(std::move(group));
    }
    return out;
  } catch (const std::exception& e) {
    return InvalidArgumentError("'" + source + "': " + e.what());
  }
}

std::vector<std::string> ExpandFileSdPatterns(const std::vector<std::string>& patterns) {
  std::set<std::string> files;
  for (const auto& p : patterns) {
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) files.insert(g.gl_pathv[i]);
    }
    globfree(&g);
  }
  return {files.begin(), files.end()};
}

std::vector<ScrapeTarget> BuildScrapeTargets(const ScrapeJobConfig& job, const std::vector<TargetGroup>& groups) {
  std::map<std::string, ScrapeTarget> out;  // by url + labels
  for (const TargetGroup& g : groups) {
    for (const std::string& addr : g.targets) {
      Labels l = g.labels;
      l.Set("__address__", addr);
      if (!l.Has("job")) l.Set("job", job.job_name);
      l.Set("__scheme__", job.scheme);
      l.Set("__metrics_path__", job.metrics_path);
      l.Set("__scrape_interval__", std::to_string(job.interval.count() / 1000) + "s");
      l.Set("__scrape_timeout__", std::to_string(job.timeout.count() / 1000) + "s");
      for (const auto& [k, v] : job.params)
        if (!v.empty() && IsValidLabelName("__param_" + k)) l.Set("__param_" + k, v.front());
      if (!g.source.empty()) l.Set("__meta_filepath", g.source);
      if (!ApplyRelabel(job.relabel, l)) continue;
      std::string address(l.Get("__address__"));
      if (address.empty()) continue;
      std::string url = std::string(l.Get("__scheme__").empty() ? job.scheme : l.Get("__scheme__")) + "://" + address +
                        std::string(l.Get("__metrics_path__").empty() ? job.metrics_path : l.Get("__metrics_path__"));
      // Prometheus: the job's params, the first value of each replaced by
      // its __param_<name> label; __param_ labels of other names add params.
      std::string query;
      auto add = [&query](std::string_view k, std::string_view v) {
        query += (query.empty() ? "?" : "&") + UrlEncode(k) + "=" + UrlEncode(v);
      };
      for (const auto& [k, vs] : job.params) {
        for (size_t i = 0; i < vs.size(); ++i) {
          std::string_view label = l.Get("__param_" + k);
          add(k, i == 0 && !label.empty() ? label : std::string_view(vs[i]));
        }
      }
      for (const Label& x : l) {
        if (x.name.rfind("__param_", 0) == 0 && !job.params.count(x.name.substr(8))) add(x.name.substr(8), x.value);
      }
      url += query;
      std::vector<Label> kept;
      for (const Label& x : l)
        if (x.name.rfind("__", 0) != 0) kept.push_back(x);
      Labels final_labels = *Labels::FromUnsorted(std::move(kept));
      if (!final_labels.Has("instance")) final_labels.Set("instance", address);
      std::string key = url + "\xff" + final_labels.ToString();
      out[key] = ScrapeTarget{url, std::move(final_labels)};
    }
  }
  std::vector<ScrapeTarget> v;
  for (auto& [k, t] : out) v.push_back(std::move(t));
  return v;
}

struct ScrapeService::Job {
  ScrapeJobConfig config;
  std::unique_ptr<ScrapeManager> manager;
  std::map<std::string, std::vector<TargetGroup>> file_groups;  // by file
  std::map<std::string, std::pair<int64_t, int64_t>> file_stamp;  // mtime ns, size
  std::chrono::steady_clock::time_point last_refresh{};
};

ScrapeService::ScrapeService(ScrapeConfigFile config, ScrapeSink sink, ErrorSink on_error)
    : sink_(std::move(sink)), on_error_(std::move(on_error)) {
  bool any_file_sd = false;
  for (ScrapeJobConfig& c : config.jobs) {
    auto job = std::make_unique<Job>();
    job->config = std::move(c);
    job->manager = std::make_unique<ScrapeManager>(sink_);
    any_file_sd |= !job->config.file_sd_files.empty();
    jobs_.push_back(std::move(job));
  }
  RefreshFileSd();
  {
    std::lock_guard lock(refresh_mu_);
    for (auto& job : jobs_) SyncJob(*job);
    started_ = true;
  }
  if (any_file_sd) watcher_ = std::thread([this] { Watch(); });
}

ScrapeService::~ScrapeService() { Stop(); }

void ScrapeService::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  for (auto& job : jobs_) job->manager->Stop();
}

void ScrapeService::Reload(ScrapeConfigFile config) {
  std::vector<std::unique_ptr<Job>> removed;
  {
    std::lock_guard lock(refresh_mu_);
    std::map<std::string, std::unique_ptr<Job>> old;
    for (auto& job : jobs_) old[job->config.job_name] = std::move(job);
    jobs_.clear();
    for (ScrapeJobConfig& c : config.jobs) {
      std::unique_ptr<Job> job;
      if (auto it = old.find(c.job_name); it != old.end()) {
        job = std::move(it->second);
        old.erase(it);
        job->file_stamp.clear();  // re-read file_sd for the new patterns
        job->file_groups.clear();
      } else {
        job = std::make_unique<Job>();
        job->manager = std::make_unique<ScrapeManager>(sink_);
      }
      job->config = std::move(c);
      job->last_refresh = {};
      jobs_.push_back(std::move(job));
    }
    for (auto& [name, job] : old) removed.push_back(std::move(job));
  }
  for (auto& job : removed) {
    job->manager->Sync({}, ScrapeOptions{}, job->config.interval);  // stale markers for all its targets
    job->manager->Stop();
  }
  bool any_file_sd = false;
  {
    std::lock_guard lock(refresh_mu_);
    for (auto& job : jobs_) any_file_sd |= !job->config.file_sd_files.empty();
  }
  RefreshFileSd();
  {
    std::lock_guard lock(refresh_mu_);
    for (auto& job : jobs_) SyncJob(*job);
    started_ = true;
  }
  std::lock_guard lock(mu_);
  if (any_file_sd && !watcher_.joinable() && !stopping_) watcher_ = std::thread([this] { Watch(); });
}

size_t ScrapeService::num_targets() const {
  std::lock_guard lock(refresh_mu_);
  size_t n = 0;
  for (const auto& job : jobs_) n += job->manager->num_targets();
  return n;
}

void ScrapeService::SyncJob(Job& job) {
  std::vector<TargetGroup> groups = job.config.static_groups;
  for (const auto& [file, gs] : job.file_groups) groups.insert(groups.end(), gs.begin(), gs.end());
  ScrapeOptions o;
  o.timeout = job.config.timeout;
  o.honor_labels = job.config.honor_labels;
  if (!job.config.metric_relabel.empty()) {
    auto rules = std::make_shared<std::vector<RelabelRule>>(job.config.metric_relabel);
    o.metric_relabel = [rules](Labels& l) { return ApplyRelabel(*rules, l); };
  }
  job.manager->Sync(BuildScrapeTargets(job.config, groups), o, job.config.interval);
}

void ScrapeService::RefreshFileSd() {
  std::lock_guard lock(refresh_mu_);
  for (auto& job : jobs_) {
    if (job->config.file_sd_files.empty()) continue;
    std::vector<std::string> files = ExpandFileSdPatterns(job->config.file_sd_files);
    bool changed = false;
    std::map<std::string, std::pair<int64_t, int64_t>> stamps;
    for (const auto& f : files) {
      struct stat st {};
      if (stat(f.c_str(), &st) != 0) continue;
      stamps[f] = {static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                   static_cast<int64_t>(st.st_size)};
    }
    auto due = std::chrono::steady_clock::now() - job->last_refresh >= job->config.file_sd_refresh;
    if (stamps == job->file_stamp && !due) continue;
    job->last_refresh = std::chrono::steady_clock::now();
    std::map<std::string, std::vector<TargetGroup>> groups;
    for (const auto& [f, stamp] : stamps) {
      bool ok = false;
      std::string text = ReadAll(f, &ok);
      Result<std::vector<TargetGroup>> parsed =
          ok ? ParseFileSd(text, f) : Result<std::vector<TargetGroup>>(NotFoundError("cannot read '" + f + "'"));
      if (parsed.ok()) {
        groups[f] = std::move(*parsed);
      } else {
        if (on_error_) on_error_(Status(parsed.status().code(), "file_sd of job '" + job->config.job_name + "': " +
                                                                   std::string(parsed.status().message())));
        if (auto it = job->file_groups.find(f); it != job->file_groups.end()) groups[f] = it->second;  // keep
      }
    }
    changed = groups.size() != job->file_groups.size();
    if (!changed) {
      for (const auto& [f, gs] : groups) {
        auto it = job->file_groups.find(f);
        if (it == job->file_groups.end() || it->second.size() != gs.size()) { changed = true; break; }
        for (size_t i = 0; i < gs.size() && !changed; ++i)
          changed = gs[i].targets != it->second[i].targets || !(gs[i].labels == it->second[i].labels);
      }
    }
    job->file_stamp = std::move(stamps);
    job->file_groups = std::move(groups);
    if (changed && started_) SyncJob(*job);
  }
}

void ScrapeService::Watch() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    lock.unlock();
    RefreshFileSd();
    lock.lock();
  }
}

}  // namespace telkit
