// The study report (see include/sparsebench/report/report.h).
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
json speedup_chart(const std::vector<Cell>& cells) {
  // Best of our implementations per (panel, pattern, sparsity).
  std::map<std::tuple<std::string, std::string, double>, std::pair<double, std::string>> best;
  for (const Cell& c : cells) {
    if (!is_ours_sparse(c)) continue;
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
  for (const Cell& c : cells) {
    if (c.key.kind != "model" || !c.accuracy) continue;
    if (!seen.insert({c.key.subject, c.key.pattern, c.key.sparsity}).second) continue;
    values.push_back({{"model", c.key.subject}, {"pattern", c.key.pattern}, {"sparsity", c.key.sparsity},
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
  for (const Cell& c : cells)
    if (c.key.kind == "model" && c.accuracy && c.status == "ok" && c.median_ms > 0)
      pts.push_back({c.key.subject, c.key.pattern, c.key.device,
                     setting_label(c.key.kind, c.key.batch, c.key.threads), c.key.sparsity, c.median_ms,
                     *c.accuracy});
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
  int ok = 0, noisy = 0;
  for (const Cell& c : cells)
    if (c.status == "ok") {
      ++ok;
      noisy += c.noisy ? 1 : 0;
    }
  const std::string cpu = cpu_name(runs);
  using K = std::tuple<std::string, std::string, std::string, std::string, int, int>;
  std::map<K, std::vector<const BreakEven*>> groups;
  for (const BreakEven& r : rows) groups[{r.kind, r.group, r.subject, r.device, r.batch, r.threads}].push_back(&r);
  int paying = 0;
  for (const auto& [k, rs] : groups) {
    const auto& [kind, group, subject, device, batch, threads] = k;
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
  if (!groups.empty())
    out.insert(out.begin(), fmt::format("Sparsity beat dense at some measured sparsity in {} of {} configurations "
                                        "(subject x device x batch x threads); speedups are same-run ratios "
                                        "against the fastest dense implementation.",
                                        paying, groups.size()));
  // Said first and plainly: a ranking built on noisy samples is a rough one.
  if (noisy > 0)
    out.insert(out.begin(), fmt::format("Caution: {} of {} measured cells are flagged noisy (coefficient of "
                                        "variation over the threshold, after one re-measurement); speedups marked ~ "
                                        "in the break-even table come from such cells and are rough.",
                                        noisy, ok));
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

ReportData build_report(const ResultStore& store) {
  ReportData d;
  d.runs = store.runs();
  std::map<std::string, std::size_t> index;
  for (Cell& c : store.cells()) {
    const std::string k = key_text(c.key);
    auto it = index.find(k);
    if (it == index.end()) {
      index.emplace(k, d.cells.size());
      d.cells.push_back(std::move(c));
    } else {
      d.cells[it->second] = std::move(c);
    }
  }
  d.break_even = compute_break_even(d.cells);
  d.findings = compute_findings(d.break_even, d.runs, d.cells);
  auto add = [&](const std::string& id, const std::string& title, const std::string& caption, json spec) {
    if (!spec.is_null()) d.charts.push_back({{"id", id}, {"title", title}, {"caption", caption}, {"spec", spec}});
  };
  add("speedup", "Speedup vs sparsity",
      "Best of our sparse implementations against the fastest dense implementation, measured interleaved in the "
      "same run (log scale); above the dashed 1x line sparsity pays.",
      speedup_chart(d.cells));
  json mem = memory_chart(d.cells);
  if (!mem.is_null()) mem = wrap_column_facet(mem, "sparsity", "sparsity");
  add("memory", "Weight memory per format",
      "Stored weight bytes (values, indices and metadata) relative to the dense weights of the same layer, "
      "averaged over the layers measured; below the dashed line the format is smaller than dense.",
      mem);
  add("accuracy", "Accuracy vs sparsity", "Test accuracy of the pruned and fine-tuned small models.",
      accuracy_sparsity_chart(d.cells));
  add("pareto", "Accuracy vs latency",
      "Each point a (pattern, sparsity); the dashed line joins the Pareto front (nothing is both faster and "
      "more accurate).",
      accuracy_latency_chart(d.cells));
  return d;
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

std::vector<std::string> write_report(const ResultStore& store, const std::string& out_dir,
                                      const ReportOptions& options) {
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

  const ReportData d = build_report(store);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(fmt::format("{}: cannot create the report directory: {}", out_dir, ec.message()));

  // Environment of the newest run; every run listed.
  std::vector<std::pair<std::string, std::string>> env;
  if (!d.runs.empty()) flatten(d.runs.back().environment, "", env);

  // --- report.md ---
  std::string md = "# sparsebench report\n\n";
  md += fmt::format("Results: `{}` ({} cells, {} run{}).\n\n", store.path(), d.cells.size(), d.runs.size(),
                    d.runs.size() == 1 ? "" : "s");
  md += "## Findings\n\n";
  if (d.findings.empty()) md += "No sparse cell with a same-run speedup yet.\n";
  for (const auto& f : d.findings) md += "- " + f + "\n";
  md += "\n## Break-even\n\nThe lowest measured sparsity at which a pattern (best of our implementations) beats "
        "the fastest dense implementation in the same run.\n\n";
  md += break_even_markdown(d.break_even);
  md += "\n## Runs\n\n| id | started | finished | status | git |\n|---:|---|---|---|---|\n";
  for (const RunInfo& r : d.runs)
    md += fmt::format("| {} | {} | {} | {} | {} |\n", r.id, r.started, r.finished.empty() ? "-" : r.finished, r.status,
                      r.git_revision);
  md += "\n## Environment (newest run)\n\n| key | value |\n|---|---|\n";
  for (const auto& [k, v] : env) md += fmt::format("| {} | {} |\n", k, v);
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
  h += fmt::format("<p>{} cells from <code>{}</code>, {} run{}. Every number is a stored measurement or a same-run "
                   "ratio of two; <code>report.md</code> and <code>results.csv</code> beside this page hold the same "
                   "data.</p>\n",
                   d.cells.size(), html_escape(store.path()), d.runs.size(), d.runs.size() == 1 ? "" : "s");
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
  h += "</table>\n<h2>Runs</h2>\n<table>\n<tr><th>id</th><th>started</th><th>finished</th><th>status</th><th>git</th>"
       "</tr>\n";
  for (const RunInfo& r : d.runs)
    h += fmt::format("<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", r.id,
                     html_escape(r.started), html_escape(r.finished.empty() ? "-" : r.finished),
                     html_escape(r.status), html_escape(r.git_revision));
  h += "</table>\n<h2>Environment</h2>\n<table>\n";
  for (const auto& [k, v] : env) h += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", html_escape(k), html_escape(v));
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

}  // namespace sb
