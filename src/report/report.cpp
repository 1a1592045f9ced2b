// The study report (see include/sparsebench/report/report.h).
#include "sparsebench/bench/parallel_probe.h"
#include "sparsebench/report/report.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "sparsebench/core/error.h"

namespace sb {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string key_text(const CellKey& k) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", k.kind, k.group, k.subject, k.pattern, k.sparsity, k.batch,
                     k.threads, k.device, k.impl, k.variant);
}

// A measured sparse cell that can be compared with dense: ours (not a dense baseline, a peer
// library or the reference), with a same-run speedup.
bool is_ours_sparse(const Cell& c) {
  return c.status == "ok" && c.speedup > 0 && c.key.pattern != "dense" && c.role != "baseline" &&
         c.role != "peer" && c.role != "reference";
}

std::string pct(double s) { return fmt::format("{:.0f} %", s * 100); }

std::string subject_label(const Cell& c) {
  return c.key.group.empty() || c.key.group == c.key.subject ? c.key.subject
                                                             : fmt::format("{} {}", c.key.group, c.key.subject);
}

std::string setting_label(const std::string& kind, int batch, int threads) {
  // GPU cells have no CPU thread count (stored as 0).
  if (threads == 0) return fmt::format("{} {}", kind == "kernel" ? "N" : "batch", batch);
  return fmt::format("{} {}, {} thread{}", kind == "kernel" ? "N" : "batch", batch, threads, threads == 1 ? "" : "s");
}

std::string cpu_name(const std::vector<RunInfo>& runs) {
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    const json& e = it->environment;
    if (e.contains("cpu") && e["cpu"].contains("model") && e["cpu"]["model"].is_string())
      return e["cpu"]["model"].get<std::string>();
  }
  return "";
}

// Charts are declarative Vega-Lite (v5) with their data inlined; the page only embeds them.
json speedup_chart(const std::vector<Cell>& cells, const std::string& kind) {
  // Best of our implementations per (panel, pattern, sparsity).
  std::map<std::tuple<std::string, std::string, double>, std::pair<double, std::string>> best;
  for (const Cell& c : cells) {
    if (!is_ours_sparse(c) || c.key.kind != kind) continue;
    const std::string panel = fmt::format("{} · {} · {}", subject_label(c), c.key.device,
                                          setting_label(c.key.kind, c.key.batch, c.key.threads));
    auto& b = best[{panel, c.key.pattern, c.key.sparsity}];
    if (c.speedup > b.first) b = {c.speedup, c.key.impl};
  }
  json values = json::array();
  for (const auto& [k, v] : best)
    values.push_back({{"panel", std::get<0>(k)}, {"pattern", std::get<1>(k)}, {"sparsity", std::get<2>(k)},
                      {"speedup", v.first}, {"impl", v.second}});
  if (values.empty()) return json();
  const json x = {{"field", "sparsity"}, {"type", "quantitative"}, {"title", "sparsity"},
                  {"axis", {{"format", ".0%"}}}, {"scale", {{"zero", false}, {"padding", 8}}}};
  const json y = {{"field", "speedup"}, {"type", "quantitative"}, {"title", "speedup vs dense (x)"},
                  {"scale", {{"type", "log"}}}};
  json spec = {
      {"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
      {"data", {{"values", values}}},
      {"columns", 3},
      {"facet", {{"field", "panel"}, {"type", "nominal"}, {"title", nullptr},
                 {"header", {{"labelFontSize", 11}, {"labelLimit", 320}}}}},
      {"resolve", {{"scale", {{"y", "shared"}}}}},
      {"spec",
       {{"width", 260},
        {"height", 170},
        {"layer",
         json::array(
             {{{"mark", {{"type", "line"}, {"point", true}}},
               {"encoding",
                {{"x", x},
                 {"y", y},
                 {"color", {{"field", "pattern"}, {"type", "nominal"}, {"title", "pattern"}}},
                 {"tooltip", json::array({{{"field", "pattern"}}, {{"field", "sparsity"}, {"format", ".0%"}},
                                          {{"field", "speedup"}, {"format", ".2f"}}, {{"field", "impl"}}})}}}},
              {{"mark", {{"type", "rule"}, {"color", "#c00"}, {"strokeDash", json::array({4, 3})}}},
               {"encoding", {{"y", {{"datum", 1}}}}}}})}}}};
  return spec;
}

json memory_chart(const std::vector<Cell>& cells) {
  // Weight bytes per format relative to the dense weights of the same subject, averaged over
  // subjects: how much a format saves (or costs) at each sparsity.
  std::map<std::string, double> dense_bytes;  // subject -> dense weight bytes
  for (const Cell& c : cells)
    if (c.status == "ok" && c.format == "dense" && c.weight_bytes > 0)
      dense_bytes[c.key.kind + c.key.group + c.key.subject] = static_cast<double>(c.weight_bytes);
  std::map<std::tuple<std::string, std::string, double>, std::pair<double, int>> sum;
  for (const Cell& c : cells) {
    if (c.status != "ok" || c.weight_bytes <= 0 || c.format == "dense" || c.role == "reference") continue;
    auto d = dense_bytes.find(c.key.kind + c.key.group + c.key.subject);
    if (d == dense_bytes.end()) continue;
    auto& s = sum[{c.format, c.key.pattern, c.key.sparsity}];
    s.first += static_cast<double>(c.weight_bytes) / d->second;
    s.second += 1;
  }
  json values = json::array();
  for (const auto& [k, v] : sum)
    values.push_back({{"format", std::get<0>(k)}, {"pattern", std::get<1>(k)}, {"sparsity", pct(std::get<2>(k))},
                      {"ratio", v.first / v.second}, {"subjects", v.second},
                      {"label", fmt::format("{} ({})", std::get<0>(k), std::get<1>(k))}});
  if (values.empty()) return json();
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"data", {{"values", values}}},
          {"width", 200},
          {"height", 220},
          {"layer",
           json::array({{{"mark", "bar"},
                         {"encoding",
                          {{"x", {{"field", "label"}, {"type", "nominal"}, {"title", nullptr},
                                  {"axis", {{"labelAngle", -40}, {"labelLimit", 200}}}}},
                           {"y", {{"field", "ratio"}, {"type", "quantitative"}, {"title", "weight bytes / dense"}}},
                           {"color", {{"field", "format"}, {"type", "nominal"}}},
                           {"tooltip", json::array({{{"field", "label"}}, {{"field", "ratio"}, {"format", ".2f"}},
                                                    {{"field", "subjects"}}})}}}},
                        {{"mark", {{"type", "rule"}, {"color", "#c00"}, {"strokeDash", json::array({4, 3})}}},
                         {"encoding", {{"y", {{"datum", 1}}}}}}})},
          {"facet", nullptr}};
}

// Model weights as stored: values / indices (and pointers) / metadata, relative to the dense
// model's bytes, one bar per (model, pattern) and a column per sparsity.
json model_memory_chart(const std::vector<Cell>& cells) {
  std::map<std::string, double> dense;  // model -> dense weight bytes
  for (const Cell& c : cells)
    if (c.key.kind == "model" && c.status == "ok" && c.role == "baseline" && c.weight_bytes > 0)
      dense[c.key.subject] = static_cast<double>(c.weight_bytes);
  json values = json::array();
  std::set<std::tuple<std::string, std::string, double>> seen;
  for (const Cell& c : cells) {
    if (c.key.kind != "model" || c.status != "ok" || c.role == "baseline" || c.weight_bytes <= 0) continue;
    const auto d = dense.find(c.key.subject);
    if (d == dense.end() || !seen.insert({c.key.subject, c.key.pattern, c.key.sparsity}).second) continue;
    const double v = static_cast<double>(c.weight_value_bytes.value_or(c.weight_bytes));
    const double i = static_cast<double>(c.weight_index_bytes.value_or(0));
    const double m = static_cast<double>(c.weight_meta_bytes.value_or(0));
    const std::string label = fmt::format("{} {}", c.key.subject, c.key.pattern);
    for (const auto& [part, bytes] : {std::pair<const char*, double>{"values", v}, {"indices", i}, {"metadata", m}})
      values.push_back({{"label", label}, {"sparsity", pct(c.key.sparsity)}, {"part", part},
                        {"ratio", bytes / d->second}, {"bytes", bytes}, {"format", c.format}});
  }
  if (values.empty()) return json();
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"data", {{"values", values}}},
          {"facet", {{"column", {{"field", "sparsity"}, {"type", "ordinal"}, {"title", "sparsity"}}}}},
          {"spec",
           {{"width", 220},
            {"height", 200},
            {"layer",
             json::array({{{"mark", "bar"},
                           {"encoding",
                            {{"x", {{"field", "label"}, {"type", "nominal"}, {"title", nullptr},
                                    {"axis", {{"labelAngle", -40}, {"labelLimit", 200}}}}},
                             {"y", {{"field", "ratio"}, {"type", "quantitative"}, {"stack", "zero"},
                                    {"title", "weight bytes / dense model"}}},
                             {"color", {{"field", "part"}, {"type", "nominal"}, {"title", "stored as"}}},
                             {"tooltip", json::array({{{"field", "label"}}, {{"field", "part"}}, {{"field", "format"}},
                                                      {{"field", "bytes"}, {"format", ",.0f"}},
                                                      {{"field", "ratio"}, {"format", ".3f"}}})}}}},
                          {{"mark", {{"type", "rule"}, {"color", "#c00"}, {"strokeDash", json::array({4, 3})}}},
                           {"encoding", {{"y", {{"datum", 1}}}}}}})}}}};
}

// Compare: the same configuration's best speedup on each machine, a line per machine.
json machine_chart(const std::vector<Cell>& cells) {
  std::map<std::tuple<std::string, std::string, std::string, double>, double> best;
  std::set<std::string> machines;
  for (const Cell& c : cells) {
    if (!is_ours_sparse(c) || c.key.kind != "model" || !c.extra.contains("machine")) continue;
    const std::string machine = c.extra["machine"].get<std::string>();
    machines.insert(machine);
    const std::string panel = fmt::format("{} · {} · {}", c.key.subject, c.key.pattern,
                                          setting_label(c.key.kind, c.key.batch, c.key.threads));
    double& b = best[{panel, machine, c.extra.value("device", std::string("cpu")), c.key.sparsity}];
    b = std::max(b, c.speedup);
  }
  if (machines.size() < 2) return json();
  json values = json::array();
  for (const auto& [k, v] : best)
    values.push_back({{"panel", std::get<0>(k)}, {"machine", std::get<1>(k) + " · " + std::get<2>(k)},
                      {"sparsity", std::get<3>(k)}, {"speedup", v}});
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"data", {{"values", values}}},
          {"columns", 3},
          {"facet", {{"field", "panel"}, {"type", "nominal"}, {"title", nullptr},
                     {"header", {{"labelLimit", 320}}}}},
          {"spec",
           {{"width", 240},
            {"height", 160},
            {"layer",
             json::array(
                 {{{"mark", {{"type", "line"}, {"point", true}}},
                   {"encoding",
                    {{"x", {{"field", "sparsity"}, {"type", "quantitative"}, {"axis", {{"format", ".0%"}}},
                            {"scale", {{"zero", false}, {"padding", 8}}}}},
                     {"y", {{"field", "speedup"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}},
                            {"title", "speedup vs dense (x)"}}},
                     {"color", {{"field", "machine"}, {"type", "nominal"}}},
                     {"tooltip", json::array({{{"field", "machine"}}, {{"field", "sparsity"}, {"format", ".0%"}},
                                              {{"field", "speedup"}, {"format", ".2f"}}})}}}},
                  {{"mark", {{"type", "rule"}, {"color", "#c00"}, {"strokeDash", json::array({4, 3})}}},
                   {"encoding", {{"y", {{"datum", 1}}}}}}})}}}};
}

json wrap_column_facet(json layered, const std::string& field, const std::string& title) {
  // Vega-Lite puts data and facet at the top, the layered unit below.
  json data = layered["data"];
  layered.erase("data");
  layered.erase("$schema");
  layered.erase("facet");
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"data", data},
          {"facet", {{"column", {{"field", field}, {"type", "ordinal"}, {"title", title}}}}},
          {"spec", layered}};
}

json accuracy_sparsity_chart(const std::vector<Cell>& cells) {
  json values = json::array();
  std::set<std::tuple<std::string, std::string, double>> seen;
  // The dense model is one point at sparsity 0 (its rows repeat with every pruned cell).
  for (const Cell& c : cells) {
    if (c.key.kind != "model" || !c.accuracy) continue;
    const bool dense = c.role == "baseline" || c.key.pattern == "dense";
    const std::string pattern = dense ? "dense" : c.key.pattern;
    const double sparsity = dense ? 0.0 : c.key.sparsity;
    if (!seen.insert({c.key.subject, pattern, sparsity}).second) continue;
    values.push_back({{"model", c.key.subject}, {"pattern", pattern}, {"sparsity", sparsity},
                      {"accuracy", *c.accuracy}});
  }
  if (values.empty()) return json();
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"data", {{"values", values}}},
          {"columns", 3},
          {"facet", {{"field", "model"}, {"type", "nominal"}, {"title", nullptr}}},
          {"spec",
           {{"width", 240},
            {"height", 170},
            {"mark", {{"type", "line"}, {"point", true}}},
            {"encoding",
             {{"x", {{"field", "sparsity"}, {"type", "quantitative"}, {"axis", {{"format", ".0%"}}}}},
              {"y", {{"field", "accuracy"}, {"type", "quantitative"}, {"axis", {{"format", ".0%"}}},
                     {"scale", {{"zero", false}}}}},
              {"color", {{"field", "pattern"}, {"type", "nominal"}}},
              {"tooltip", json::array({{{"field", "pattern"}}, {{"field", "sparsity"}, {"format", ".0%"}},
                                       {{"field", "accuracy"}, {"format", ".2%"}}})}}}}}};
}

json accuracy_latency_chart(const std::vector<Cell>& cells) {
  struct Point {
    std::string model, pattern, device, setting;
    double sparsity, latency, accuracy;
    bool pareto = true;
  };
  std::vector<Point> pts;
  std::set<std::tuple<std::string, std::string, std::string>> dense_seen;
  for (const Cell& c : cells) {
    if (c.key.kind != "model" || !c.accuracy || c.status != "ok" || c.median_ms <= 0) continue;
    const std::string setting = setting_label(c.key.kind, c.key.batch, c.key.threads);
    if (c.role == "baseline" || c.key.pattern == "dense") {
      // The dense model, timed once per pruned cell: its first measurement stands for it.
      if (dense_seen.insert({c.key.subject, c.key.device, setting}).second)
        pts.push_back({c.key.subject, "dense", c.key.device, setting, 0.0, c.median_ms, *c.accuracy});
      continue;
    }
    pts.push_back({c.key.subject, c.key.pattern, c.key.device, setting, c.key.sparsity, c.median_ms, *c.accuracy});
  }
  if (pts.empty()) return json();
  // Pareto front per (model, device, setting): no other point is at least as fast and as accurate
  // and strictly better in one.
  for (Point& p : pts)
    for (const Point& q : pts)
      if (&p != &q && q.model == p.model && q.device == p.device && q.setting == p.setting &&
          q.latency <= p.latency && q.accuracy >= p.accuracy && (q.latency < p.latency || q.accuracy > p.accuracy))
        p.pareto = false;
  json values = json::array();
  for (const Point& p : pts)
    values.push_back({{"panel", fmt::format("{} · {} · {}", p.model, p.device, p.setting)}, {"pattern", p.pattern},
                      {"sparsity", p.sparsity}, {"latency_ms", p.latency}, {"accuracy", p.accuracy},
                      {"front", p.pareto ? "Pareto front" : "dominated"}});
  const json tooltip = json::array({{{"field", "pattern"}}, {{"field", "sparsity"}, {"format", ".0%"}},
                                    {{"field", "latency_ms"}, {"format", ".3f"}},
                                    {{"field", "accuracy"}, {"format", ".2%"}}});
  return {{"$schema", "https://vega.github.io/schema/vega-lite/v5.json"},
          {"data", {{"values", values}}},
          {"columns", 3},
          {"facet", {{"field", "panel"}, {"type", "nominal"}, {"title", nullptr}}},
          {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
          {"spec",
           {{"width", 240},
            {"height", 170},
            {"layer",
             json::array(
                 {{{"transform", json::array({{{"filter", "datum.front == 'Pareto front'"}}})},
                   {"mark", {{"type", "line"}, {"color", "#444"}, {"strokeDash", json::array({3, 2})}}},
                   {"encoding", {{"x", {{"field", "latency_ms"}, {"type", "quantitative"}}},
                                 {"y", {{"field", "accuracy"}, {"type", "quantitative"}}},
                                 {"order", {{"field", "latency_ms"}}}}}},
                  {{"mark", {{"type", "point"}, {"filled", true}, {"size", 60}}},
                   {"encoding",
                    {{"x", {{"field", "latency_ms"}, {"type", "quantitative"}, {"title", "median latency (ms)"},
                            {"scale", {{"zero", false}}}}},
                     {"y", {{"field", "accuracy"}, {"type", "quantitative"}, {"axis", {{"format", ".0%"}}},
                            {"scale", {{"zero", false}}}}},
                     {"color", {{"field", "pattern"}, {"type", "nominal"}}},
                     {"shape", {{"field", "front"}, {"type", "nominal"}, {"title", nullptr}}},
                     {"tooltip", tooltip}}}}})}}}};
}

std::vector<BreakEven> compute_break_even(const std::vector<Cell>& cells) {
  using K = std::tuple<std::string, std::string, std::string, std::string, int, int, std::string>;
  struct Best {
    double speedup = 0;
    std::string impl;
    bool noisy = false;
  };
  std::map<K, std::map<double, Best>> best;
  for (const Cell& c : cells) {
    if (!is_ours_sparse(c)) continue;
    auto& b = best[{c.key.kind, c.key.group, c.key.subject, c.key.device, c.key.batch, c.key.threads,
                    c.key.pattern}][c.key.sparsity];
    if (c.speedup > b.speedup) b = {c.speedup, c.key.impl, c.noisy};
  }
  std::vector<BreakEven> out;
  for (const auto& [k, by_sparsity] : best) {
    BreakEven r;
    std::tie(r.kind, r.group, r.subject, r.device, r.batch, r.threads, r.pattern) = k;
    for (const auto& [s, v] : by_sparsity) {
      r.sparsities.push_back(s);
      r.speedups.push_back(v.speedup);
      r.noisy.push_back(v.noisy);
      if (r.break_even < 0 && v.speedup > 1) {
        r.break_even = s;
        r.best_impl_at_break_even = v.impl;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> compute_findings(const std::vector<BreakEven>& rows, const std::vector<RunInfo>& runs,
                                          const std::vector<Cell>& cells) {
  std::vector<std::string> out;
  int ok = 0, noisy = 0, apart = 0;
  for (const Cell& c : cells)
    if (c.status == "ok") {
      ++ok;
      noisy += c.noisy ? 1 : 0;
      apart += c.extra.is_object() && c.extra.value("disturbed", false) ? 1 : 0;
    }
  const std::string cpu = cpu_name(runs);
  // Models first: they answer the question; kernels explain the answer.
  using K = std::tuple<int, std::string, std::string, std::string, std::string, int, int>;
  std::map<K, std::vector<const BreakEven*>> groups;
  for (const BreakEven& r : rows)
    groups[{r.kind == "model" ? 0 : 1, r.kind, r.group, r.subject, r.device, r.batch, r.threads}].push_back(&r);
  int paying = 0;
  for (const auto& [k, rs] : groups) {
    const auto& [order, kind, group, subject, device, batch, threads] = k;
    const std::string where = device == "cpu" ? (cpu.empty() ? "on this CPU" : "on this CPU (" + cpu + ")")
                                              : "on " + device;
    const std::string what = group.empty() || group == subject ? subject : fmt::format("{} ({})", subject, group);
    std::vector<std::string> parts;
    std::vector<std::string> never;
    double lowest = 2;
    for (const BreakEven* r : rs) lowest = std::min(lowest, r->sparsities.empty() ? 2.0 : r->sparsities.front());
    std::vector<std::string> at_lowest;
    for (const BreakEven* r : rs) {
      const auto best = std::max_element(r->speedups.begin(), r->speedups.end());
      const double best_s = r->sparsities[static_cast<std::size_t>(best - r->speedups.begin())];
      if (r->break_even >= 0) {
        parts.push_back(fmt::format("{} pays from {} (best {:.2f}x at {})", r->pattern, pct(r->break_even), *best,
                                    pct(best_s)));
        if (r->break_even == lowest) at_lowest.push_back(r->pattern);
      } else {
        never.push_back(fmt::format("{} (best {:.2f}x at {})", r->pattern, *best, pct(best_s)));
      }
    }
    std::string s = fmt::format("{}, for {} at {}: ", where, what, setting_label(kind, batch, threads));
    if (parts.empty()) {
      s += "no sparse pattern beats dense at any measured sparsity";
    } else {
      ++paying;
      s += fmt::format("{}", fmt::join(parts, "; "));
      // "at 50 % only X pays" says something only when other patterns pay later.
      if (lowest <= 1 && at_lowest.size() < parts.size()) {
        if (at_lowest.empty())
          s += fmt::format("; at {} none pays", pct(lowest));
        else
          s += fmt::format("; at {} only {} pay{}", pct(lowest), fmt::join(at_lowest, " and "),
                           at_lowest.size() == 1 ? "s" : "");
      }
    }
    if (!never.empty()) s += fmt::format("; never pays: {}", fmt::join(never, ", "));
    out.push_back(s + ".");
  }
  // GPU models: the same passes with every layer back to back in one CUDA graph (no per-call event
  // or launch floor), beside the per-layer sum the speedups above use.
  std::map<std::tuple<std::string, std::string, int>, std::vector<std::string>> graph;
  for (const Cell& c : cells) {
    if (c.key.kind != "model" || c.status != "ok" || c.role == "baseline" || !c.extra.contains("graph_pass")) continue;
    const nlohmann::json& g = c.extra["graph_pass"];
    const double gs = g.value("speedup", 0.0);
    if (gs <= 0) continue;
    graph[{c.key.device, c.key.subject, c.key.batch}].push_back(fmt::format(
        "{} at {} {:.2f}x (per-layer sum {:.2f}x){}", c.key.pattern, pct(c.key.sparsity), gs, c.speedup,
        g.value("noisy", false) ? ", noisy" : ""));
  }
  for (const auto& [k, parts] : graph) {
    const auto& [device, subject, batch] = k;
    out.push_back(fmt::format("On {}, {} at batch {} as one CUDA graph per pass (layers back to back, no per-call "
                              "floor), sparse vs dense: {}.",
                              device, subject, batch, fmt::join(parts, "; ")));
  }
  // Memory: per model, at its highest measured sparsity, what each pattern's weights cost.
  std::map<std::string, double> dense_bytes;
  std::map<std::string, double> top_sparsity;
  for (const Cell& c : cells)
    if (c.key.kind == "model" && c.status == "ok") {
      if (c.role == "baseline" && c.weight_bytes > 0) dense_bytes[c.key.subject] = static_cast<double>(c.weight_bytes);
      else if (c.key.pattern != "dense") top_sparsity[c.key.subject] = std::max(top_sparsity[c.key.subject], c.key.sparsity);
    }
  // (model, pattern, sparsity) -> stored weights relative to the dense model's, and the format.
  std::map<std::tuple<std::string, std::string, double>, std::pair<double, std::string>> stored;
  for (const Cell& c : cells)
    if (c.key.kind == "model" && c.status == "ok" && c.role != "baseline" && c.weight_bytes > 0)
      if (const auto d = dense_bytes.find(c.key.subject); d != dense_bytes.end())
        stored[{c.key.subject, c.key.pattern, c.key.sparsity}] = {static_cast<double>(c.weight_bytes) / d->second,
                                                                  c.format};
  for (const auto& [model, sp] : top_sparsity) {
    const auto d = dense_bytes.find(model);
    if (d == dense_bytes.end()) continue;
    std::vector<std::string> parts;
    for (const auto& [k, v] : stored)
      if (std::get<0>(k) == model && std::get<2>(k) == sp)
        parts.push_back(fmt::format("{} {:.2f}x ({})", std::get<1>(k), v.first, v.second));
    if (!parts.empty())
      out.push_back(fmt::format("Memory: at {} sparsity {}'s stored weights take, relative to its dense weights ({:.1f} "
                                "MB): {}.",
                                pct(sp), model, d->second / 1e6, fmt::join(parts, ", ")));
  }
  // Accuracy: per model, how far each pattern can go within one point of the dense model.
  std::map<std::string, double> dense_acc;
  std::map<std::string, std::map<std::string, std::map<double, double>>> acc;
  std::map<std::string, std::set<std::string>> recipes;  // per model: the training lengths behind its figures
  for (const Cell& c : cells) {
    if (c.key.kind != "model" || !c.accuracy) continue;
    if (c.role == "baseline" || c.key.pattern == "dense") dense_acc[c.key.subject] = *c.accuracy;
    else acc[c.key.subject][c.key.pattern][c.key.sparsity] = *c.accuracy;
    if (c.extra.contains("recipe") && c.extra["recipe"].is_string()) {
      // "epochs=3,ft_epochs=2,...,train=30000,...": the fields that say how long it trained.
      std::vector<std::string> keep;
      std::string field;
      std::istringstream in(c.extra["recipe"].get<std::string>());
      while (std::getline(in, field, ','))
        if (field.rfind("epochs=", 0) == 0 || field.rfind("ft_epochs=", 0) == 0 || field.rfind("train=", 0) == 0)
          keep.push_back(field == "train=0" ? "train=60000" : field);
      // The schedule, where it is not the trainer's default (the cubic ramp).
      if (c.extra.contains("schedule") && c.extra["schedule"].is_string() && c.extra["schedule"] != "gradual")
        keep.push_back("schedule=" + c.extra["schedule"].get<std::string>());
      if (!keep.empty()) recipes[c.key.subject].insert(fmt::format("{}", fmt::join(keep, ", ")));
    }
  }
  for (const auto& [model, by_pattern] : acc) {
    const auto d = dense_acc.find(model);
    std::vector<std::string> parts;
    for (const auto& [pat, by_sp] : by_pattern) {
      if (d == dense_acc.end()) {
        parts.push_back(fmt::format("{} {:.1f} % at {}", pat, by_sp.rbegin()->second * 100, pct(by_sp.rbegin()->first)));
        continue;
      }
      // The highest sparsity up to which every measured one stays within a point (not merely the
      // highest that does: "up to 70 %" must not hide a loss at 50 %).
      double keep = -1;
      for (const auto& [sp, a] : by_sp) {
        if (d->second - a > 0.01) break;
        keep = sp;
      }
      const auto& [hi_sp, hi_acc] = *by_sp.rbegin();
      // A structured pattern's sparsity is over the layers whose channels may go; channels tied
      // across layers (residual streams) stay, so say how much of the whole model is left.
      std::string whole;
      if (pat.rfind("filter", 0) == 0 || pat.rfind("channel", 0) == 0)
        if (const auto st = stored.find({model, pat, hi_sp}); st != stored.end() && st->second.second == "dense")
          whole = fmt::format("; the shrunk model keeps {:.0f} % of the dense weights", 100.0 * st->second.first);
      parts.push_back(keep >= 0 ? fmt::format("{} stays within 1 point up to {} ({:.1f} % at {}{})", pat, pct(keep),
                                              hi_acc * 100, pct(hi_sp), whole)
                                : fmt::format("{} loses more than 1 point already at {} ({:.1f} %)", pat,
                                              pct(by_sp.begin()->first), by_sp.begin()->second * 100));
    }
    // The training behind the figures: a study's recipe is often shorter than `sparsebench train`'s.
    const auto r = recipes.find(model);
    const std::string trained =
        r == recipes.end() ? "" : fmt::format(" Trained with {}.", fmt::join(r->second, " / "));
    out.push_back(d != dense_acc.end()
                      ? fmt::format("Accuracy of {} (dense {:.1f} %): {}.{}", model, d->second * 100,
                                    fmt::join(parts, "; "), trained)
                      : fmt::format("Accuracy of {}: {}.{}", model, fmt::join(parts, "; "), trained));
  }
  // Energy: measured, or why not (never estimated).
  // Per device: the CPU's counter is RAPL (whole socket), the GPU's NVML (whole board).
  for (const char* device : {"cpu", "cuda"}) {
    int with_energy = 0, model_cells = 0;
    std::string why;
    for (const Cell& c : cells)
      if (c.key.kind == "model" && c.status == "ok" && c.key.device == device) {
        ++model_cells;
        if (c.energy_j) ++with_energy;
        else if (why.empty()) why = c.energy_note;
      }
    const bool gpu = std::string(device) == "cuda";
    if (model_cells > 0 && with_energy == 0)
      out.push_back(fmt::format("Energy{} was not measured: {}.", gpu ? " on the GPU" : "",
                                why.empty() ? "unavailable" : why));
    else if (with_energy > 0)
      out.push_back(fmt::format("Energy ({}) was read for {} of {} {} model cells; the cells table holds joules per "
                                "batch.",
                                gpu ? "NVML, whole GPU board" : "RAPL, whole socket", with_energy, model_cells,
                                device));
  }
  if (!groups.empty())
    out.insert(out.begin(), fmt::format("Sparsity beat dense at some measured sparsity in {} of {} configurations "
                                        "(subject x device x batch x threads); speedups are same-run ratios "
                                        "against the fastest dense implementation.",
                                        paying, groups.size()));
  // Said first and plainly: a ranking built on noisy samples is a rough one.
  if (noisy > 0)
    out.insert(out.begin(),
               fmt::format("Caution: {} of {} measured cells are flagged noisy (coefficient of variation over the "
                           "threshold, after one re-measurement{}); speedups marked ~ in the break-even table come "
                           "from such cells and are rough.",
                           noisy, ok,
                           apart > 0 ? fmt::format("; {} of them multi-threaded cells measured while the CPUs talked "
                                                   "over {:.0f}x slower than at their best, the host having moved "
                                                   "them apart, even after waiting for them to come back",
                                                   apart, kDisturbedFactor)
                                     : std::string()));
  return out;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// Text inlined into a <script> element must not close it early: "</script" becomes "<\/script",
// which JavaScript reads the same inside strings. Only that sequence is touched: a blanket "</"
// rewrite would corrupt regular-expression literals in the minified libraries.
std::string script_safe(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 7 < s.size() && s[i + 1] == '/' &&
        std::equal(s.begin() + i + 2, s.begin() + i + 8, "script",
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; })) {
      out += "<\\/";
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(fmt::format("{}: cannot read", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) fail(fmt::format("{}: cannot write", p.string()));
}

// The environment as (key, value) rows: nested objects flattened with dots, boolean feature maps
// as the list of what is present.
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows) {
  if (j.is_object()) {
    bool all_bool = !j.empty();
    for (const auto& [k, v] : j.items()) all_bool = all_bool && v.is_boolean();
    if (all_bool) {
      std::string present;
      for (const auto& [k, v] : j.items())
        if (v.get<bool>()) present += (present.empty() ? "" : " ") + k;
      rows.emplace_back(prefix, present.empty() ? "(none)" : present);
      return;
    }
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, rows);
  } else if (j.is_array()) {
    if (j.empty()) {
      rows.emplace_back(prefix, "(none)");
      return;
    }
    std::string text;
    for (const json& e : j) {
      if (e.is_object() && e.contains("level") && e.contains("size_bytes") && e["size_bytes"].is_number())
        text += fmt::format("{}L{} {} {} KiB x{}", text.empty() ? "" : "; ", e.value("level", 0),
                            e.value("type", std::string()), e["size_bytes"].get<double>() / 1024,
                            e.value("instances", 1));
      else if (e.is_object() && e.contains("name") && e.contains("version"))
        text += fmt::format("{}{} {}", text.empty() ? "" : "; ", e["name"].get<std::string>(),
                            e["version"].is_string() ? e["version"].get<std::string>() : e["version"].dump());
      else
        text += (text.empty() ? "" : "; ") + (e.is_string() ? e.get<std::string>() : e.dump());
    }
    rows.emplace_back(prefix, text);
  } else {
    rows.emplace_back(prefix, j.is_string() ? j.get<std::string>() : j.dump());
  }
}

std::string speedups_text(const BreakEven& r) {
  std::string s;
  for (std::size_t i = 0; i < r.sparsities.size(); ++i)
    s += fmt::format("{}{}: {}{:.2f}x", i ? ", " : "", pct(r.sparsities[i]),
                     i < r.noisy.size() && r.noisy[i] ? "~" : "", r.speedups[i]);
  return s;
}

}  // namespace

std::string default_web_assets_dir() {
  if (const char* env = std::getenv("SB_WEB_ASSETS"); env && *env) return env;
#ifdef SB_WEB_ASSETS_DIR
  return SB_WEB_ASSETS_DIR;
#else
  return "web";
#endif
}

namespace {

struct Source {
  std::string label;  // empty for a single store
  std::string path;
  std::vector<RunInfo> runs;
  std::vector<Cell> cells;
};

// "laptop" for laptop/results.db, "a" for a.db; the CPU model after it when known.
std::string machine_label(const std::string& path, const std::vector<RunInfo>& runs) {
  const fs::path p(path);
  std::string name = p.stem().string();
  if (name == "results" && p.has_parent_path() && !p.parent_path().filename().empty())
    name = p.parent_path().filename().string();
  const std::string cpu = cpu_name(runs);
  return cpu.empty() ? name : fmt::format("{} ({})", name, cpu);
}

ReportData gather(std::vector<Source> sources) {
  ReportData d;
  const bool compare = sources.size() > 1;
  std::map<std::string, std::size_t> index;
  for (Source& src : sources) {
    d.machines.push_back(src.label);
    d.environments.push_back(src.runs.empty() ? json::object() : src.runs.back().environment);
    for (RunInfo& r : src.runs) {
      d.run_machines.push_back(src.label);
      d.runs.push_back(std::move(r));
    }
    for (Cell& c : src.cells) {
      if (compare) {
        // Machines are told apart as devices are: every panel, table row and finding names it.
        c.extra["machine"] = src.label;
        c.extra["device"] = c.key.device;
        c.key.device = fmt::format("{} · {}", src.label, c.key.device);
      }
      const std::string k = key_text(c.key);
      auto it = index.find(k);
      if (it == index.end()) {
        index.emplace(k, d.cells.size());
        d.cells.push_back(std::move(c));
      } else {
        d.cells[it->second] = std::move(c);
      }
    }
  }
  d.break_even = compute_break_even(d.cells);
  // Models first (the question), then kernels (the explanation).
  std::stable_sort(d.break_even.begin(), d.break_even.end(),
                   [](const BreakEven& a, const BreakEven& b) { return (a.kind == "model") > (b.kind == "model"); });
  d.findings = compute_findings(d.break_even, compare ? std::vector<RunInfo>{} : d.runs, d.cells);
  auto add = [&](const std::string& id, const std::string& title, const std::string& caption, json spec) {
    if (!spec.is_null()) d.charts.push_back({{"id", id}, {"title", title}, {"caption", caption}, {"spec", spec}});
  };
  add("speedup-model", "Model speedup vs sparsity",
      "Whole-model latency of the pruned model (our runtime, kernels chosen per layer) against the same model "
      "dense (oneDNN), timed interleaved in the same run (log scale); a panel per model, device, batch and "
      "threads; above the dashed 1x line sparsity pays.",
      speedup_chart(d.cells, "model"));
  add("machines", "Model speedup by machine",
      "The same configuration on each machine compared (same-run ratios on each); a line per machine.",
      machine_chart(d.cells));
  add("speedup", "Kernel speedup vs sparsity",
      "Best of our sparse kernels against the fastest dense implementation on one layer shape, measured "
      "interleaved in the same run (log scale); above the dashed 1x line sparsity pays.",
      speedup_chart(d.cells, "kernel"));
  add("model-memory", "Model weight memory",
      "Stored weight bytes of the pruned models, split into values, indices (with pointers) and metadata, "
      "relative to the dense model; below the dashed line the model is smaller than dense.",
      model_memory_chart(d.cells));
  json mem = memory_chart(d.cells);
  if (!mem.is_null()) mem = wrap_column_facet(mem, "sparsity", "sparsity");
  add("memory", "Weight memory per format",
      "Stored weight bytes (values, indices and metadata) relative to the dense weights of the same layer, "
      "averaged over the layers measured; below the dashed line the format is smaller than dense.",
      mem);
  add("accuracy", "Accuracy vs sparsity",
      "Test accuracy (Fashion-MNIST, our runtime) of the small models pruned with each pattern and fine-tuned; "
      "the dense model at 0 %.",
      accuracy_sparsity_chart(d.cells));
  add("pareto", "Accuracy vs latency",
      "Each point a (pattern, sparsity), latency of the same architecture pruned to that pattern and sparsity; "
      "the dashed line joins the Pareto front (nothing is both faster and more accurate).",
      accuracy_latency_chart(d.cells));
  return d;
}

Source load_source(const ResultStore& store, const std::string& label) {
  return {label, store.path(), store.runs(), store.cells()};
}

}  // namespace

ReportData build_report(const ResultStore& store) { return gather({load_source(store, "")}); }

ReportData build_compare_report(const std::vector<std::string>& db_paths) {
  SB_CHECK(!db_paths.empty(), "compare: no results database given");
  std::vector<Source> sources;
  std::map<std::string, int> seen;
  for (const std::string& p : db_paths) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) fail(fmt::format("{}: no such results database", p));
    ResultStore store(p);
    Source s = load_source(store, "");
    s.label = machine_label(p, s.runs);
    if (const int n = ++seen[s.label]; n > 1) s.label += fmt::format(" #{}", n);
    sources.push_back(std::move(s));
  }
  return gather(std::move(sources));
}

std::string break_even_markdown(const std::vector<BreakEven>& rows) {
  if (rows.empty()) return "(no sparse cell with a same-run speedup)\n";
  std::string s =
      "| subject | device | batch/N | threads | pattern | break-even sparsity | speedup by sparsity |\n"
      "|---|---|---:|---:|---|---:|---|\n";
  for (const BreakEven& r : rows)
    s += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n",
                     r.group.empty() || r.group == r.subject ? r.subject : r.group + " " + r.subject, r.device,
                     r.batch, r.threads, r.pattern, r.break_even >= 0 ? pct(r.break_even) : "never", speedups_text(r));
  return s;
}

namespace {

std::vector<std::string> write_pages(const ReportData& d, const std::vector<std::string>& paths,
                                     const std::string& out_dir, const ReportOptions& options) {
  std::string md_sources, html_sources;
  for (const std::string& p : paths) {
    md_sources += (md_sources.empty() ? "`" : ", `") + p + "`";
    html_sources += (html_sources.empty() ? "<code>" : ", <code>") + html_escape(p) + "</code>";
  }
  // The libraries first: a missing one is an error before anything is written.
  const fs::path assets(options.web_assets_dir);
  std::string libs;
  for (const char* name : {"vega", "vega-lite", "vega-embed"}) {
    const fs::path p = assets / "node_modules" / name / "build" / (std::string(name) + ".min.js");
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      fail(fmt::format("{}: missing (the report inlines it); run scripts/fetch-web-assets.sh {} (needs npm and the "
                       "npm registry once)",
                       p.string(), options.web_assets_dir));
    libs += fmt::format("<script>/* {} */\n{}\n</script>\n", name, script_safe(read_file(p)));
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(fmt::format("{}: cannot create the report directory: {}", out_dir, ec.message()));

  // Environment of each store's newest run, side by side (one column per machine); every run listed.
  const bool compare = d.machines.size() > 1;
  std::vector<std::string> env_keys;
  std::vector<std::map<std::string, std::string>> env_cols;
  for (const json& e : d.environments) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(e, "", rows);
    env_cols.emplace_back();
    for (const auto& [k, v] : rows) {
      if (std::find(env_keys.begin(), env_keys.end(), k) == env_keys.end()) env_keys.push_back(k);
      env_cols.back()[k] = v;
    }
  }
  auto env_value = [&](std::size_t col, const std::string& k) {
    const auto it = env_cols[col].find(k);
    return it == env_cols[col].end() ? std::string("-") : it->second;
  };
  const std::string machine_header = compare ? "machine" : "";

  // --- report.md ---
  std::string md = "# sparsebench report\n\n";
  md += fmt::format("Results: {} ({} cells, {} run{}).\n\n", md_sources, d.cells.size(), d.runs.size(),
                    d.runs.size() == 1 ? "" : "s");
  md += "## Findings\n\n";
  if (d.findings.empty()) md += "No sparse cell with a same-run speedup yet.\n";
  for (const auto& f : d.findings) md += "- " + f + "\n";
  md += "\n## Break-even\n\nThe lowest measured sparsity at which a pattern (best of our implementations) beats "
        "the fastest dense implementation in the same run.\n\n";
  md += break_even_markdown(d.break_even);
  md += fmt::format("\n## Runs\n\n|{} id | started | finished | status | git |\n|{}---:|---|---|---|---|\n",
                    compare ? " machine |" : "", compare ? "---|" : "");
  for (std::size_t i = 0; i < d.runs.size(); ++i) {
    const RunInfo& r = d.runs[i];
    md += fmt::format("|{} {} | {} | {} | {} | {} |\n", compare ? " " + d.run_machines[i] + " |" : "", r.id, r.started,
                      r.finished.empty() ? "-" : r.finished, r.status, r.git_revision);
  }
  md += compare ? "\n## Environment (newest run of each machine)\n\n| key |" : "\n## Environment (newest run)\n\n| key |";
  // fmt, not " " + s + " |": GCC 12 reports a false -Wrestrict in that concatenation (GCC PR 105651).
  for (std::size_t m = 0; m < env_cols.size(); ++m) md += fmt::format(" {} |", compare ? d.machines[m] : "value");
  md += "\n|---|";
  for (std::size_t m = 0; m < env_cols.size(); ++m) md += "---|";
  md += "\n";
  for (const std::string& k : env_keys) {
    md += "| " + k + " |";
    for (std::size_t m = 0; m < env_cols.size(); ++m) md += fmt::format(" {} |", env_value(m, k));
    md += "\n";
  }
  md += "\n## Cells\n\n| kind | subject | pattern | sparsity | batch/N | threads | device | impl | median ms | p90 ms "
        "| p99 ms | cv | speedup | weight bytes | accuracy | energy | status |\n"
        "|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  for (const Cell& c : d.cells)
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.3f}{} | {} | {} | {} | "
                      "{} | {} |\n",
                      c.key.kind, subject_label(c), c.key.pattern, pct(c.key.sparsity), c.key.batch, c.key.threads,
                      c.key.device, c.key.impl, c.median_ms, c.p90_ms, c.p99_ms, c.cv, c.noisy ? " noisy" : "",
                      c.speedup > 0 ? fmt::format("{:.2f}x", c.speedup) : "-", c.weight_bytes,
                      c.accuracy ? fmt::format("{:.2f} %", *c.accuracy * 100) : "-",
                      c.energy_j ? fmt::format("{:.4g} J", *c.energy_j) : c.energy_note, c.status);

  // --- index.html ---
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>sparsebench report</title>\n";
  h += R"(<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.never { color: #a00; } .pays { color: #060; font-weight: 600; }
.caption { color: #555; margin: 4px 0 8px; } .chart { overflow-x: auto; }
ul.findings li { margin: 4px 0; }
</style>
)";
  h += libs;
  h += "</head>\n<body data-rendered=\"pending\">\n<h1>sparsebench report</h1>\n";
  h += fmt::format("<p>{} cells from {}, {} run{}. Every number is a stored measurement or a same-run "
                   "ratio of two; <code>report.md</code> and <code>results.csv</code> beside this page hold the same "
                   "data.</p>\n",
                   d.cells.size(), html_sources, d.runs.size(), d.runs.size() == 1 ? "" : "s");
  h += "<h2>Findings</h2>\n<ul class=\"findings\">\n";
  if (d.findings.empty()) h += "<li>No sparse cell with a same-run speedup yet.</li>\n";
  for (const auto& f : d.findings) h += "<li>" + html_escape(f) + "</li>\n";
  h += "</ul>\n";
  for (const json& c : d.charts)
    h += fmt::format("<h2>{}</h2>\n<p class=\"caption\">{}</p>\n<div class=\"chart\" id=\"chart-{}\"></div>\n",
                     html_escape(c["title"].get<std::string>()), html_escape(c["caption"].get<std::string>()),
                     c["id"].get<std::string>());
  h += "<h2>Break-even</h2>\n<p class=\"caption\">The lowest measured sparsity at which a pattern (best of our "
       "implementations) beats the fastest dense implementation in the same run.</p>\n";
  h += "<table>\n<tr><th>subject</th><th>device</th><th>batch/N</th><th>threads</th><th>pattern</th><th>break-even"
       "</th><th>speedup by sparsity</th></tr>\n";
  for (const BreakEven& r : d.break_even)
    h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>"
                     "<td class=\"num {}\">{}</td><td>{}</td></tr>\n",
                     html_escape(r.group.empty() || r.group == r.subject ? r.subject : r.group + " " + r.subject),
                     html_escape(r.device), r.batch, r.threads, html_escape(r.pattern),
                     r.break_even >= 0 ? "pays" : "never", r.break_even >= 0 ? pct(r.break_even) : "never",
                     html_escape(speedups_text(r)));
  h += fmt::format("</table>\n<h2>Runs</h2>\n<table>\n<tr>{}<th>id</th><th>started</th><th>finished</th><th>status</th>"
                   "<th>git</th></tr>\n",
                   compare ? "<th>machine</th>" : "");
  for (std::size_t i = 0; i < d.runs.size(); ++i) {
    const RunInfo& r = d.runs[i];
    h += fmt::format("<tr>{}<td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     compare ? "<td>" + html_escape(d.run_machines[i]) + "</td>" : "", r.id, html_escape(r.started),
                     html_escape(r.finished.empty() ? "-" : r.finished), html_escape(r.status),
                     html_escape(r.git_revision));
  }
  h += "</table>\n<h2>Environment</h2>\n<table>\n";
  if (compare) {
    h += "<tr><th>key</th>";
    for (const std::string& m : d.machines) h += "<th>" + html_escape(m) + "</th>";
    h += "</tr>\n";
  }
  for (const std::string& k : env_keys) {
    h += "<tr><th>" + html_escape(k) + "</th>";
    for (std::size_t m = 0; m < env_cols.size(); ++m) h += "<td>" + html_escape(env_value(m, k)) + "</td>";
    h += "</tr>\n";
  }
  h += "</table>\n";
  // Rendering status for people and for the headless-browser test: data-rendered and the title say
  // "rendered:N" once every chart's vegaEmbed promise resolved, "error: ..." otherwise.
  json charts = json::array();
  for (const json& c : d.charts) charts.push_back({{"id", "chart-" + c["id"].get<std::string>()}, {"spec", c["spec"]}});
  h += "<script>\nconst SB_CHARTS = " + script_safe(charts.dump()) + ";\n";
  h += R"(Promise.all(SB_CHARTS.map(c => vegaEmbed('#' + c.id, c.spec, {actions: false, renderer: 'svg'})))
  .then(views => {
    document.body.dataset.rendered = 'rendered:' + views.length;
    document.title = 'rendered:' + views.length + ' - sparsebench report';
  })
  .catch(err => {
    document.body.dataset.rendered = 'error: ' + err;
    document.title = 'error - sparsebench report';
    console.error(err);
  });
</script>
</body>
</html>
)";

  const fs::path dir(out_dir);
  write_file(dir / "index.html", h);
  write_file(dir / "report.md", md);
  write_file(dir / "results.csv", export_csv(d.cells));
  return {(dir / "index.html").string(), (dir / "report.md").string(), (dir / "results.csv").string()};
}

}  // namespace

std::vector<std::string> write_report(const ResultStore& store, const std::string& out_dir,
                                      const ReportOptions& options) {
  return write_pages(build_report(store), {store.path()}, out_dir, options);
}

std::vector<std::string> write_compare_report(const std::vector<std::string>& db_paths, const std::string& out_dir,
                                              const ReportOptions& options) {
  return write_pages(build_compare_report(db_paths), db_paths, out_dir, options);
}

}  // namespace sb
