// The results store: round trip, resume keys, one transaction per cell, schema versioning.
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "sparsebench/core/error.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/report/store.h"

namespace fs = std::filesystem;

namespace {

std::string temp_db(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sb_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove(p);
  return p.string();
}

sb::Cell kernel_cell(const std::string& impl, double sparsity, double speedup) {
  sb::Cell c;
  c.key.kind = "kernel";
  c.key.group = "bert_base";
  c.key.subject = "768x768x128";
  c.key.pattern = "unstructured";
  c.key.sparsity = sparsity;
  c.key.batch = 128;
  c.key.threads = 1;
  c.key.impl = impl;
  c.key.variant = "cache=hot";
  c.role = "kernel";
  c.format = "csr";
  c.median_ms = 1.5;
  c.p10_ms = 1.4;
  c.p90_ms = 1.7;
  c.p99_ms = 1.9;
  c.cv = 0.05;
  c.reps = 3;
  c.speedup = speedup;
  c.weight_bytes = 1000;
  c.energy_note = "unavailable: test";
  c.samples_ms = {1.4, 1.5, 1.9};
  return c;
}

}  // namespace

TEST(Store, RoundTripsRunsCellsAndSamples) {
  const std::string path = temp_db("roundtrip.db");
  {
    sb::ResultStore store(path);
    sb::RunInfo run;
    run.config = "[sweep]\n";
    run.environment = sb::to_json(sb::system_info());
    run.git_revision = "abc1234";
    const auto id = store.begin_run(run);
    sb::Cell c = kernel_cell("f32_spmm_csr", 0.7, 1.8);
    c.accuracy = 0.91;
    c.peak_rss_bytes = 12345;
    c.extra = {{"m", 768}};
    store.add_cell(id, c);
    store.add_cell(id, kernel_cell("f32_spmm_csr", 0.9, 0));
    store.finish_run(id);
  }
  sb::ResultStore store(path);  // reopened: same schema version
  const auto runs = store.runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, "finished");
  EXPECT_FALSE(runs[0].finished.empty());
  EXPECT_EQ(runs[0].git_revision, "abc1234");
  EXPECT_TRUE(runs[0].environment.contains("cpu"));
  const auto cells = store.cells();
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].key.subject, "768x768x128");
  EXPECT_EQ(cells[0].samples_ms, (std::vector<double>{1.4, 1.5, 1.9}));
  EXPECT_DOUBLE_EQ(*cells[0].accuracy, 0.91);
  EXPECT_EQ(*cells[0].peak_rss_bytes, 12345);
  EXPECT_FALSE(cells[0].energy_j.has_value());
  EXPECT_EQ(cells[0].energy_note, "unavailable: test");
  EXPECT_FALSE(cells[1].accuracy.has_value());
  EXPECT_EQ(cells[0].extra["m"], 768);

  const std::string csv = sb::export_csv(cells);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  const auto j = sb::export_json(store);
  EXPECT_EQ(j["schema_version"], sb::kStoreSchemaVersion);
  EXPECT_EQ(j["cells"].size(), 2u);
  EXPECT_TRUE(j["cells"][1]["speedup"].is_null());
  fs::remove(path);
}

TEST(Store, HasCellSkipsDoneButNotFailedCells) {
  const std::string path = temp_db("resume.db");
  sb::ResultStore store(path);
  const auto run = store.begin_run({});
  sb::Cell done = kernel_cell("a", 0.5, 1.1);
  sb::Cell failed = kernel_cell("b", 0.5, 0);
  failed.status = "failed: out of memory";
  store.add_cell(run, done);
  store.add_cell(run, failed);
  EXPECT_TRUE(store.has_cell(done.key));
  EXPECT_TRUE(store.has_cell(done.key, run));
  EXPECT_FALSE(store.has_cell(done.key, run + 1));
  EXPECT_FALSE(store.has_cell(failed.key));  // failures are measured again on --resume
  sb::CellKey other = done.key;
  other.threads = 2;
  EXPECT_FALSE(store.has_cell(other));
  fs::remove(path);
}

TEST(Store, EachCellIsCommittedOnItsOwn) {
  // A second connection sees a cell as soon as add_cell returns: a study killed afterwards keeps it.
  const std::string path = temp_db("commit.db");
  sb::ResultStore store(path);
  const auto run = store.begin_run({});
  store.add_cell(run, kernel_cell("a", 0.5, 1.1));
  sb::ResultStore reader(path);
  EXPECT_EQ(reader.cells().size(), 1u);
  EXPECT_EQ(reader.latest_run()->status, "running");
  fs::remove(path);
}

TEST(Store, RejectsAnotherSchemaVersion) {
  const std::string path = temp_db("version.db");
  { sb::ResultStore store(path); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    sb::ResultStore store(path);
    FAIL() << "opened a version-99 store";
  } catch (const sb::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("schema version 99"), std::string::npos) << msg;
    EXPECT_NE(msg.find("version 1"), std::string::npos) << msg;
  }
  fs::remove(path);
}

TEST(Store, RejectsAFileThatIsNotAStore) {
  const std::string path = temp_db("garbage.db");
  {
    std::ofstream out(path);
    out << "this is not a database, it is text long enough to fill a header page of sqlite........";
  }
  try {
    sb::ResultStore store(path);
    FAIL() << "opened a text file";
  } catch (const sb::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a sparsebench results database"), std::string::npos) << e.what();
  }
  fs::remove(path);
}

TEST(Store, KernelRecordAdapterKeepsTheMeasurement) {
  sb::KernelRecord r;
  r.set = "bert_base";
  r.matrix = "768x768x128";
  r.m = 768;
  r.k = 768;
  r.n = 128;
  r.pattern = "nm:2:4";
  r.sparsity = 0.5;
  r.achieved = 0.5;
  r.impl = "f32_spmm_balanced";
  r.role = "kernel";
  r.format = "balanced";
  r.threads = 2;
  r.status = "ok";
  r.stats = sb::summarize({1.0, 2.0, 3.0, 4.0});
  r.weight_bytes = 4242;
  r.speedup = 1.25;
  r.baseline = "onednn_dense";
  const sb::Cell c = sb::to_cell(r);
  EXPECT_EQ(c.key.kind, "kernel");
  EXPECT_EQ(c.key.batch, 128);
  EXPECT_EQ(c.key.variant, "cache=hot");
  EXPECT_DOUBLE_EQ(c.median_ms, 2.5);
  EXPECT_DOUBLE_EQ(c.p99_ms, sb::percentile({1.0, 2.0, 3.0, 4.0}, 99));
  EXPECT_EQ(c.samples_ms.size(), 4u);
  EXPECT_EQ(c.weight_bytes, 4242);
  EXPECT_DOUBLE_EQ(c.speedup, 1.25);
  EXPECT_FALSE(c.energy_j.has_value());
  EXPECT_EQ(c.energy_note.rfind("unavailable: ", 0), 0u);
}
