#pragma once
// The results store: one SQLite file per study (DIR/results.db). A run is one invocation of a
// study; a cell is one measured configuration (a kernel on a shape, or a model) with its raw
// samples. Every cell is written in its own transaction, so a study killed mid-way loses at most
// the cell in flight, and `has_cell` lets `--resume` skip what is done.
//
// The schema is versioned (table schema_version): opening a file written with another version
// throws sb::Error naming the file and both versions instead of misreading it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/bench/kernel_bench.h"

namespace sb {

inline constexpr int kStoreSchemaVersion = 1;

struct RunInfo {
  std::int64_t id = 0;
  std::string started;      // UTC, ISO 8601 ("2026-11-22T21:40:37Z")
  std::string finished;     // empty while running
  std::string config;       // the study config text (TOML) or the command line
  nlohmann::json environment = nlohmann::json::object();  // sb::to_json(sb::system_info())
  std::string git_revision; // "abc1234", "abc1234-dirty", or "unknown"
  std::string status;       // "running" | "finished" | "interrupted" | "failed: <why>"
};

// What identifies a cell; two cells with equal keys in one run measure the same thing.
struct CellKey {
  std::string kind;       // "kernel" | "model"
  std::string group;      // kernel: the shape set ("bert_base", "cli"); model: empty
  std::string subject;    // kernel: the shape "768x768x128"; model: its name ("resnet50")
  std::string pattern;    // canonical Pattern text ("dense", "unstructured", "nm:2:4", ...)
  double sparsity = 0;    // requested, in [0, 1)
  int batch = 1;          // model: the batch size; kernel: N of the shape
  int threads = 1;
  std::string device = "cpu";
  std::string impl;       // implementation ("f32_spmm_csr_...", "onednn_dense", "sb_executor")
  std::string variant;    // anything else that changes the measurement (kernel: "cache=hot")
};

struct Cell {
  std::int64_t id = 0, run_id = 0;
  CellKey key;
  std::string status = "ok";  // "ok", "skipped: <why>", "failed: <why>"
  std::string role;           // "ours" | "dense-baseline" | "peer" | ...
  std::string format;         // weight storage ("csr", "bsr", "dense", ...)
  double achieved_sparsity = 0;
  // Timing, milliseconds per call (kernel) or per batch (model); 0 when status != "ok".
  double median_ms = 0, p10_ms = 0, p90_ms = 0, p99_ms = 0, cv = 0;
  bool noisy = false;
  int reps = 0;
  double throughput = 0;        // in throughput_unit
  std::string throughput_unit;  // "GFLOP/s effective" (kernel) or "samples/s" (model)
  double speedup = 0;           // same-run ratio: dense baseline median / this median; 0 = none
  std::string baseline;         // the implementation `speedup` is against
  // Memory, bytes. The split is null where the producer does not report it.
  std::int64_t weight_bytes = 0;
  std::optional<std::int64_t> weight_value_bytes, weight_index_bytes, weight_meta_bytes;
  std::optional<std::int64_t> peak_rss_bytes;
  // Accuracy (model cells with a trained checkpoint), in [0, 1].
  std::optional<double> accuracy;
  std::string accuracy_metric;  // "top1" ...
  // Energy per call/batch, joules; null with the reason when no counter was read.
  std::optional<double> energy_j;
  std::string energy_note;      // "unavailable: <reason>" when energy_j is null
  nlohmann::json extra = nlohmann::json::object();  // producer-specific (kernel: m, k, n, nnz, ...)
  std::vector<double> samples_ms;  // raw, in measurement order
};

// Copies a measurement's timing into a cell: median, p10, p90, p99 (from the raw samples), cv,
// noisy, reps and the samples themselves.
void set_timing(Cell& c, const Stats& s);

class ResultStore {
 public:
  // Opens (creating when missing, with its parent directory not created) the database at `path`.
  // Throws sb::Error naming the path when it cannot be opened, is not a sparsebench store, or has
  // another schema version.
  explicit ResultStore(const std::string& path);
  ~ResultStore();
  ResultStore(ResultStore&&) noexcept;
  ResultStore& operator=(ResultStore&&) noexcept;
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  const std::string& path() const;

  // A new run with status "running"; `info.id` and `info.started` are filled in when empty.
  std::int64_t begin_run(RunInfo info);
  void finish_run(std::int64_t run_id, const std::string& status = "finished");
  std::vector<RunInfo> runs() const;
  // The most recent run, if any.
  std::optional<RunInfo> latest_run() const;

  // Writes one cell and its samples in one transaction; returns its id.
  std::int64_t add_cell(std::int64_t run_id, const Cell& cell);
  // Writes cells measured together (a sparse kernel and the dense baseline its speedup is against,
  // timed interleaved) in one transaction: a resumed study never keeps half of such a group.
  std::vector<std::int64_t> add_cells(std::int64_t run_id, const std::vector<Cell>& cells);
  // Whether a cell with this key exists (in `run_id` when non-zero, else in any run) and its
  // status is not "failed: ...": a resumed study measures failures again. An empty key.impl
  // matches any implementation (a group written by add_cells).
  bool has_cell(const CellKey& key, std::int64_t run_id = 0) const;
  // Cells of one run (0: every run), ordered by id, with their samples.
  std::vector<Cell> cells(std::int64_t run_id = 0) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The kernel harness's record as a kernel cell on `device`.
Cell to_cell(const KernelRecord& record, const std::string& device = "cpu");

nlohmann::json to_json(const RunInfo& run);
nlohmann::json to_json(const Cell& cell);  // samples included as "samples_ms"

// Export: every cell, one CSV row each (RFC 4180 quoting, header first; samples left out), or a
// JSON document {"schema_version", "runs": [...], "cells": [...]} with samples.
std::string export_csv(const std::vector<Cell>& cells);
nlohmann::json export_json(const ResultStore& store);

// UTC now as ISO 8601 ("2026-11-22T21:40:37Z").
std::string utc_now_iso8601();

}  // namespace sb
