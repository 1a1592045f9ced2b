// The SQLite results store (see include/sparsebench/report/store.h).
#include "sparsebench/report/store.h"

#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "sparsebench/core/error.h"

namespace sb {
namespace {

// Schema version 1. Key columns are NOT NULL so that has_cell can compare with '='.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  started TEXT NOT NULL,
  finished TEXT,
  config TEXT NOT NULL,
  environment TEXT NOT NULL,
  git_revision TEXT NOT NULL,
  status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  kind TEXT NOT NULL CHECK (kind IN ('kernel', 'model')),
  grp TEXT NOT NULL,
  subject TEXT NOT NULL,
  pattern TEXT NOT NULL,
  sparsity REAL NOT NULL,
  batch INTEGER NOT NULL,
  threads INTEGER NOT NULL,
  device TEXT NOT NULL,
  impl TEXT NOT NULL,
  variant TEXT NOT NULL,
  status TEXT NOT NULL,
  role TEXT NOT NULL,
  format TEXT NOT NULL,
  achieved_sparsity REAL NOT NULL,
  median_ms REAL NOT NULL, p10_ms REAL NOT NULL, p90_ms REAL NOT NULL, p99_ms REAL NOT NULL,
  cv REAL NOT NULL,
  noisy INTEGER NOT NULL,
  reps INTEGER NOT NULL,
  throughput REAL NOT NULL,
  throughput_unit TEXT NOT NULL,
  speedup REAL NOT NULL,
  baseline TEXT NOT NULL,
  weight_bytes INTEGER NOT NULL,
  weight_value_bytes INTEGER, weight_index_bytes INTEGER, weight_meta_bytes INTEGER,
  peak_rss_bytes INTEGER,
  accuracy REAL,
  accuracy_metric TEXT NOT NULL,
  energy_j REAL,
  energy_note TEXT NOT NULL,
  extra TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_key ON cells (kind, subject, pattern, sparsity, batch, threads, device, impl);
CREATE TABLE IF NOT EXISTS samples (
  cell_id INTEGER PRIMARY KEY REFERENCES cells(id),
  count INTEGER NOT NULL,
  samples_ms BLOB NOT NULL  -- count IEEE-754 doubles, little-endian, in measurement order
);
)sql";

constexpr const char* kCellColumns =
    "id, run_id, kind, grp, subject, pattern, sparsity, batch, threads, device, impl, variant, status, "
    "role, format, achieved_sparsity, median_ms, p10_ms, p90_ms, p99_ms, cv, noisy, reps, throughput, "
    "throughput_unit, speedup, baseline, weight_bytes, weight_value_bytes, weight_index_bytes, "
    "weight_meta_bytes, peak_rss_bytes, accuracy, accuracy_metric, energy_j, energy_note, extra";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
      fail(fmt::format("{}: SQLite: {} (in: {})", path, sqlite3_errmsg(db), sql));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, double v) { check(sqlite3_bind_double(s_, i, v)); return *this; }
  Stmt& bind(int i, std::int64_t v) { check(sqlite3_bind_int64(s_, i, v)); return *this; }
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, bool v) { return bind(i, static_cast<std::int64_t>(v ? 1 : 0)); }
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    if (v) return bind(i, *v);
    check(sqlite3_bind_null(s_, i));
    return *this;
  }
  Stmt& bind_blob(int i, const void* data, int bytes) {
    check(sqlite3_bind_blob(s_, i, data, bytes, SQLITE_TRANSIENT));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(fmt::format("{}: SQLite: {}", path_, sqlite3_errmsg(db_)));
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
  }
  double real(int c) const { return sqlite3_column_double(s_, c); }
  std::int64_t integer(int c) const { return sqlite3_column_int64(s_, c); }
  bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::optional<double> opt_real(int c) const { return null(c) ? std::nullopt : std::optional<double>(real(c)); }
  std::optional<std::int64_t> opt_int(int c) const {
    return null(c) ? std::nullopt : std::optional<std::int64_t>(integer(c));
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  const void* blob(int c) const { return sqlite3_column_blob(s_, c); }
  int blob_bytes(int c) const { return sqlite3_column_bytes(s_, c); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(fmt::format("{}: SQLite bind: {}", path_, sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string path_;
};

bool little_endian() {
  const std::uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

}  // namespace

struct ResultStore::Impl {
  sqlite3* db = nullptr;
  std::string path;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      fail(fmt::format("{}: SQLite: {}", path, msg));
    }
  }
  ~Impl() {
    if (db) sqlite3_close(db);
  }
};

ResultStore::ResultStore(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  if (sqlite3_open_v2(path.c_str(), &impl_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
    fail(fmt::format("{}: cannot open the results database: {}", path,
                     impl_->db ? sqlite3_errmsg(impl_->db) : "out of memory"));
  // Waits for a concurrent writer (a report taken during a study) instead of failing at once.
  sqlite3_busy_timeout(impl_->db, 5000);
  // Reading the schema is the first access: a file that is not SQLite fails here, named.
  bool has_version_table = false, has_any_table = false;
  try {
    Stmt s(impl_->db, "SELECT name FROM sqlite_master WHERE type = 'table'", path);
    while (s.step()) {
      has_any_table = true;
      if (s.text(0) == "schema_version") has_version_table = true;
    }
  } catch (const Error&) {
    fail(fmt::format("{}: not a sparsebench results database ({})", path, sqlite3_errmsg(impl_->db)));
  }
  if (has_any_table && !has_version_table)
    fail(fmt::format("{}: not a sparsebench results database (it has tables but no schema_version)", path));
  if (!has_version_table) {
    impl_->exec("BEGIN");
    impl_->exec(kSchema);
    impl_->exec(fmt::format("INSERT INTO schema_version (version) VALUES ({})", kStoreSchemaVersion));
    impl_->exec("COMMIT");
    return;
  }
  Stmt s(impl_->db, "SELECT version FROM schema_version", path);
  if (!s.step()) fail(fmt::format("{}: schema_version table is empty", path));
  const std::int64_t version = s.integer(0);
  if (version != kStoreSchemaVersion)
    fail(fmt::format("{}: results database has schema version {}, this sparsebench reads version {}; "
                     "use the sparsebench that wrote it, or re-run the study",
                     path, version, kStoreSchemaVersion));
}

ResultStore::~ResultStore() = default;
ResultStore::ResultStore(ResultStore&&) noexcept = default;
ResultStore& ResultStore::operator=(ResultStore&&) noexcept = default;

const std::string& ResultStore::path() const { return impl_->path; }

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::int64_t ResultStore::begin_run(RunInfo info) {
  if (info.started.empty()) info.started = utc_now_iso8601();
  Stmt s(impl_->db,
         "INSERT INTO runs (started, finished, config, environment, git_revision, status) "
         "VALUES (?, NULL, ?, ?, ?, 'running')",
         impl_->path);
  s.bind(1, info.started).bind(2, info.config).bind(3, info.environment.dump())
      .bind(4, info.git_revision.empty() ? std::string("unknown") : info.git_revision);
  s.step();
  return sqlite3_last_insert_rowid(impl_->db);
}

void ResultStore::finish_run(std::int64_t run_id, const std::string& status) {
  Stmt s(impl_->db, "UPDATE runs SET finished = ?, status = ? WHERE id = ?", impl_->path);
  s.bind(1, utc_now_iso8601()).bind(2, status).bind(3, run_id);
  s.step();
  SB_CHECK(sqlite3_changes(impl_->db) == 1, "{}: no run with id {}", impl_->path, run_id);
}

std::vector<RunInfo> ResultStore::runs() const {
  Stmt s(impl_->db,
         "SELECT id, started, finished, config, environment, git_revision, status FROM runs ORDER BY id",
         impl_->path);
  std::vector<RunInfo> out;
  while (s.step()) {
    RunInfo r;
    r.id = s.integer(0);
    r.started = s.text(1);
    r.finished = s.text(2);
    r.config = s.text(3);
    r.environment = nlohmann::json::parse(s.text(4), nullptr, /*allow_exceptions=*/false);
    if (r.environment.is_discarded()) r.environment = nlohmann::json::object();
    r.git_revision = s.text(5);
    r.status = s.text(6);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<RunInfo> ResultStore::latest_run() const {
  auto all = runs();
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::int64_t ResultStore::add_cell(std::int64_t run_id, const Cell& c) { return add_cells(run_id, {c}).front(); }

std::vector<std::int64_t> ResultStore::add_cells(std::int64_t run_id, const std::vector<Cell>& cells) {
  for (const Cell& c : cells)
    SB_CHECK(c.key.kind == "kernel" || c.key.kind == "model", "{}: cell kind '{}' is neither 'kernel' nor 'model'",
             impl_->path, c.key.kind);
  SB_CHECK(little_endian(), "the samples BLOB is little-endian; big-endian hosts are not supported");
  std::vector<std::int64_t> ids;
  impl_->exec("BEGIN IMMEDIATE");
  try {
    Stmt s(impl_->db,
           "INSERT INTO cells (run_id, kind, grp, subject, pattern, sparsity, batch, threads, device, impl, "
           "variant, status, role, format, achieved_sparsity, median_ms, p10_ms, p90_ms, p99_ms, cv, noisy, "
           "reps, throughput, throughput_unit, speedup, baseline, weight_bytes, weight_value_bytes, "
           "weight_index_bytes, weight_meta_bytes, peak_rss_bytes, accuracy, accuracy_metric, energy_j, "
           "energy_note, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
           impl_->path);
    Stmt b(impl_->db, "INSERT INTO samples (cell_id, count, samples_ms) VALUES (?, ?, ?)", impl_->path);
    for (const Cell& c : cells) {
      s.reset();
      b.reset();
      s.bind(1, run_id);
      s.bind(2, c.key.kind);
      s.bind(3, c.key.group);
      s.bind(4, c.key.subject);
      s.bind(5, c.key.pattern);
      s.bind(6, c.key.sparsity);
      s.bind(7, c.key.batch);
      s.bind(8, c.key.threads);
      s.bind(9, c.key.device);
      s.bind(10, c.key.impl);
      s.bind(11, c.key.variant);
      s.bind(12, c.status);
      s.bind(13, c.role);
      s.bind(14, c.format);
      s.bind(15, c.achieved_sparsity);
      s.bind(16, c.median_ms);
      s.bind(17, c.p10_ms);
      s.bind(18, c.p90_ms);
      s.bind(19, c.p99_ms);
      s.bind(20, c.cv);
      s.bind(21, c.noisy);
      s.bind(22, c.reps);
      s.bind(23, c.throughput);
      s.bind(24, c.throughput_unit);
      s.bind(25, c.speedup);
      s.bind(26, c.baseline);
      s.bind(27, c.weight_bytes);
      s.bind(28, c.weight_value_bytes);
      s.bind(29, c.weight_index_bytes);
      s.bind(30, c.weight_meta_bytes);
      s.bind(31, c.peak_rss_bytes);
      s.bind(32, c.accuracy);
      s.bind(33, c.accuracy_metric);
      s.bind(34, c.energy_j);
      s.bind(35, c.energy_note);
      s.bind(36, c.extra.dump());
      s.step();
      const std::int64_t id = sqlite3_last_insert_rowid(impl_->db);
      b.bind(1, id).bind(2, static_cast<std::int64_t>(c.samples_ms.size()));
      // A zero-length blob would read back as NULL; keep a non-null pointer.
      static const double kNone = 0;
      b.bind_blob(3, c.samples_ms.empty() ? &kNone : c.samples_ms.data(),
                  static_cast<int>(c.samples_ms.size() * sizeof(double)));
      b.step();
      ids.push_back(id);
    }
    impl_->exec("COMMIT");
    return ids;
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

bool ResultStore::has_cell(const CellKey& k, std::int64_t run_id) const {
  Stmt s(impl_->db,
         "SELECT 1 FROM cells WHERE kind = ? AND grp = ? AND subject = ? AND pattern = ? AND sparsity = ? "
         "AND batch = ? AND threads = ? AND device = ? AND (? = '' OR impl = ?) AND variant = ? "
         "AND status NOT LIKE 'failed%' AND (? = 0 OR run_id = ?) LIMIT 1",
         impl_->path);
  s.bind(1, k.kind).bind(2, k.group).bind(3, k.subject).bind(4, k.pattern).bind(5, k.sparsity).bind(6, k.batch)
      .bind(7, k.threads).bind(8, k.device).bind(9, k.impl).bind(10, k.impl).bind(11, k.variant).bind(12, run_id)
      .bind(13, run_id);
  return s.step();
}

std::vector<Cell> ResultStore::cells(std::int64_t run_id) const {
  Stmt s(impl_->db,
         fmt::format("SELECT {}, samples.count, samples.samples_ms FROM cells LEFT JOIN samples ON "
                     "samples.cell_id = cells.id WHERE (? = 0 OR run_id = ?) ORDER BY cells.id",
                     kCellColumns),
         impl_->path);
  s.bind(1, run_id).bind(2, run_id);
  std::vector<Cell> out;
  while (s.step()) {
    Cell c;
    int i = 0;
    c.id = s.integer(i++);
    c.run_id = s.integer(i++);
    c.key.kind = s.text(i++);
    c.key.group = s.text(i++);
    c.key.subject = s.text(i++);
    c.key.pattern = s.text(i++);
    c.key.sparsity = s.real(i++);
    c.key.batch = static_cast<int>(s.integer(i++));
    c.key.threads = static_cast<int>(s.integer(i++));
    c.key.device = s.text(i++);
    c.key.impl = s.text(i++);
    c.key.variant = s.text(i++);
    c.status = s.text(i++);
    c.role = s.text(i++);
    c.format = s.text(i++);
    c.achieved_sparsity = s.real(i++);
    c.median_ms = s.real(i++);
    c.p10_ms = s.real(i++);
    c.p90_ms = s.real(i++);
    c.p99_ms = s.real(i++);
    c.cv = s.real(i++);
    c.noisy = s.integer(i++) != 0;
    c.reps = static_cast<int>(s.integer(i++));
    c.throughput = s.real(i++);
    c.throughput_unit = s.text(i++);
    c.speedup = s.real(i++);
    c.baseline = s.text(i++);
    c.weight_bytes = s.integer(i++);
    c.weight_value_bytes = s.opt_int(i++);
    c.weight_index_bytes = s.opt_int(i++);
    c.weight_meta_bytes = s.opt_int(i++);
    c.peak_rss_bytes = s.opt_int(i++);
    c.accuracy = s.opt_real(i++);
    c.accuracy_metric = s.text(i++);
    c.energy_j = s.opt_real(i++);
    c.energy_note = s.text(i++);
    c.extra = nlohmann::json::parse(s.text(i++), nullptr, false);
    if (c.extra.is_discarded()) c.extra = nlohmann::json::object();
    const std::int64_t count = s.null(i) ? 0 : s.integer(i);
    ++i;
    if (count > 0 && s.blob_bytes(i) == static_cast<int>(count * sizeof(double))) {
      c.samples_ms.resize(static_cast<std::size_t>(count));
      std::memcpy(c.samples_ms.data(), s.blob(i), static_cast<std::size_t>(count) * sizeof(double));
    }
    out.push_back(std::move(c));
  }
  return out;
}

void set_timing(Cell& c, const Stats& s) {
  c.median_ms = s.median_ms;
  c.p10_ms = s.p10_ms;
  c.p90_ms = s.p90_ms;
  // Every sample is kept, so p99 comes from them rather than being left out.
  c.p99_ms = s.samples_ms.empty() ? 0 : percentile(s.samples_ms, 99);
  c.cv = s.cv;
  c.noisy = s.noisy;
  c.reps = static_cast<int>(s.samples_ms.size());
  c.samples_ms = s.samples_ms;
}

Cell to_cell(const KernelRecord& r, const std::string& device) {
  Cell c;
  c.key.kind = "kernel";
  c.key.group = r.set;
  c.key.subject = r.matrix;
  c.key.pattern = r.pattern;
  c.key.sparsity = r.sparsity;
  c.key.batch = static_cast<int>(r.n);
  c.key.threads = r.threads;
  c.key.device = device;
  c.key.impl = r.impl;
  c.key.variant = fmt::format("cache={}", cache_mode_name(r.cache));
  c.status = r.status;
  c.role = r.role;
  c.format = r.format;
  c.achieved_sparsity = r.achieved;
  if (r.ok()) set_timing(c, r.stats);
  c.throughput = r.effective_gflops;
  c.throughput_unit = "GFLOP/s effective";
  c.speedup = r.speedup;
  c.baseline = r.baseline;
  c.weight_bytes = static_cast<std::int64_t>(r.weight_bytes);
  c.energy_note = "unavailable: the kernel harness reads no energy counter";
  c.extra = {{"m", r.m},
             {"k", r.k},
             {"n", r.n},
             {"nnz", r.nnz},
             {"library", r.library},
             {"comment", r.comment},
             {"copies", r.copies},
             {"useful_gflops", r.useful_gflops},
             {"verified", r.verified},
             {"max_rel_error", r.max_rel_error}};
  return c;
}

nlohmann::json to_json(const RunInfo& r) {
  return {{"id", r.id},
          {"started", r.started},
          {"finished", r.finished.empty() ? nlohmann::json() : nlohmann::json(r.finished)},
          {"config", r.config},
          {"environment", r.environment},
          {"git_revision", r.git_revision},
          {"status", r.status}};
}

namespace {
template <class T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}
}  // namespace

nlohmann::json to_json(const Cell& c) {
  return {{"id", c.id},
          {"run_id", c.run_id},
          {"kind", c.key.kind},
          {"group", c.key.group},
          {"subject", c.key.subject},
          {"pattern", c.key.pattern},
          {"sparsity", c.key.sparsity},
          {"batch", c.key.batch},
          {"threads", c.key.threads},
          {"device", c.key.device},
          {"impl", c.key.impl},
          {"variant", c.key.variant},
          {"status", c.status},
          {"role", c.role},
          {"format", c.format},
          {"achieved_sparsity", c.achieved_sparsity},
          {"median_ms", c.median_ms},
          {"p10_ms", c.p10_ms},
          {"p90_ms", c.p90_ms},
          {"p99_ms", c.p99_ms},
          {"cv", c.cv},
          {"noisy", c.noisy},
          {"reps", c.reps},
          {"throughput", c.throughput},
          {"throughput_unit", c.throughput_unit},
          {"speedup", c.speedup > 0 ? nlohmann::json(c.speedup) : nlohmann::json()},
          {"baseline", c.baseline},
          {"weight_bytes", c.weight_bytes},
          {"weight_value_bytes", opt(c.weight_value_bytes)},
          {"weight_index_bytes", opt(c.weight_index_bytes)},
          {"weight_meta_bytes", opt(c.weight_meta_bytes)},
          {"peak_rss_bytes", opt(c.peak_rss_bytes)},
          {"accuracy", opt(c.accuracy)},
          {"accuracy_metric", c.accuracy_metric},
          {"energy_j", opt(c.energy_j)},
          {"energy_note", c.energy_note},
          {"extra", c.extra},
          {"samples_ms", c.samples_ms}};
}

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}
template <class T>
std::string csv_opt(const std::optional<T>& v) {
  return v ? fmt::format("{}", *v) : std::string();
}
}  // namespace

std::string export_csv(const std::vector<Cell>& cells) {
  std::string out =
      "run_id,cell_id,kind,group,subject,pattern,sparsity,batch,threads,device,impl,variant,status,role,format,"
      "achieved_sparsity,median_ms,p10_ms,p90_ms,p99_ms,cv,noisy,reps,throughput,throughput_unit,speedup,baseline,"
      "weight_bytes,weight_value_bytes,weight_index_bytes,weight_meta_bytes,peak_rss_bytes,accuracy,"
      "accuracy_metric,energy_j,energy_note\n";
  for (const Cell& c : cells) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                       c.run_id, c.id, c.key.kind, csv_field(c.key.group), csv_field(c.key.subject),
                       csv_field(c.key.pattern), c.key.sparsity, c.key.batch, c.key.threads,
                       csv_field(c.key.device), csv_field(c.key.impl), csv_field(c.key.variant),
                       csv_field(c.status), csv_field(c.role), csv_field(c.format), c.achieved_sparsity,
                       c.median_ms, c.p10_ms, c.p90_ms, c.p99_ms, c.cv, c.noisy ? 1 : 0, c.reps, c.throughput,
                       csv_field(c.throughput_unit), c.speedup > 0 ? fmt::format("{}", c.speedup) : "",
                       csv_field(c.baseline), c.weight_bytes, csv_opt(c.weight_value_bytes),
                       csv_opt(c.weight_index_bytes), csv_opt(c.weight_meta_bytes), csv_opt(c.peak_rss_bytes),
                       csv_opt(c.accuracy), csv_field(c.accuracy_metric), csv_opt(c.energy_j),
                       csv_field(c.energy_note));
  }
  return out;
}

nlohmann::json export_json(const ResultStore& store) {
  nlohmann::json runs = nlohmann::json::array(), cells = nlohmann::json::array();
  for (const RunInfo& r : store.runs()) runs.push_back(to_json(r));
  for (const Cell& c : store.cells()) cells.push_back(to_json(c));
  return {{"schema_version", kStoreSchemaVersion}, {"runs", runs}, {"cells", cells}};
}

}  // namespace sb
