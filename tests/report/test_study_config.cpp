// Study configs: the shipped ones parse; every mistake names the file, line and key.
#include <gtest/gtest.h>

#include <fstream>

#include "sparsebench/core/error.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "sparsebench/study/config.h"

namespace {

constexpr const char* kGood = R"([study]
name = "t"
[kernels]
shapes = ["768x768x128"]
[sweep]
patterns = ["dense", "unstructured", "nm:2:4"]
sparsities = [0.5, 0.9]
batches = [1]
threads = [1, 0]
devices = ["cpu"]
[measure]
min_reps = 3
min_seconds = 0
)";

// The error message parse_study_config throws for `text`, or "" when it parses.
std::string error_of(const std::string& text) {
  try {
    sb::parse_study_config(text, "my.toml");
  } catch (const sb::Error& e) {
    return e.what();
  }
  return "";
}

std::string with(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST(StudyConfig, ParsesAGoodOne) {
  const sb::StudyConfig c = sb::parse_study_config(kGood, "my.toml");
  EXPECT_EQ(c.name, "t");
  ASSERT_EQ(c.shapes.size(), 1u);
  EXPECT_EQ(c.shapes[0].n, 128);
  ASSERT_EQ(c.patterns.size(), 3u);
  EXPECT_EQ(c.patterns[2].to_string(), "nm:2:4");
  EXPECT_EQ(c.threads, (std::vector<int>{1, 0}));
  EXPECT_EQ(c.measure.min_reps, 3);
  EXPECT_EQ(c.measure.min_seconds, 0.0);  // an integer where a float is expected is fine
  EXPECT_EQ(c.measure.warmup, 2);         // default
}

TEST(StudyConfig, UnknownKeyNamesFileLineAndKey) {
  EXPECT_EQ(error_of(with("min_reps = 3", "min_rep = 3")),
            "my.toml:12:1: key 'measure.min_rep': unknown key (expected one of: cv_threshold, min_reps, "
            "min_seconds, rounds, warmup)");
}

TEST(StudyConfig, UnknownSection) {
  EXPECT_EQ(error_of(std::string(kGood) + "[extra]\nx = 1\n"),
            "my.toml:14:2: key 'extra': unknown key (expected one of: accuracy, gpu, kernels, latency, measure, study, "
            "sweep)");
}

TEST(StudyConfig, UnknownPatternQuotesTheGrammar) {
  const std::string e = error_of(with("\"nm:2:4\"", "\"nm:4:2\""));
  EXPECT_EQ(e.rfind("my.toml:6:38: key 'sweep.patterns': ", 0), 0u) << e;
  EXPECT_NE(e.find(sb::kPatternGrammar), std::string::npos) << e;
}

TEST(StudyConfig, BadValues) {
  EXPECT_EQ(error_of(with("0.5, 0.9", "0.5, 1.0")), "my.toml:7:20: key 'sweep.sparsities': 1 is outside [0, 1)");
  EXPECT_EQ(error_of(with("batches = [1]", "batches = [0]")),
            "my.toml:8:12: key 'sweep.batches': 0 is not a batch size (expected an integer >= 1)");
  EXPECT_EQ(error_of(with("threads = [1, 0]", "threads = [1, \"all\"]")),
            "my.toml:9:15: key 'sweep.threads': expected an integer, got a string");
  EXPECT_EQ(error_of(with("[\"cpu\"]", "[\"tpu\"]")),
            "my.toml:10:12: key 'sweep.devices': unknown device 'tpu' (expected cpu or cuda)");
  EXPECT_EQ(error_of(with("min_reps = 3", "min_reps = 0")),
            "my.toml:12:12: key 'measure.min_reps': 0 (expected an integer >= 1)");
  EXPECT_EQ(error_of(with("768x768x128", "768x768")).rfind("my.toml:4:11: key 'kernels.shapes': ", 0), 0u);
}

TEST(StudyConfig, UnknownModelListsTheKnownOnes) {
  const std::string e = error_of(std::string(kGood) + "[latency]\nmodels = [\"resnet50\", \"resnet51\"]\n");
  EXPECT_EQ(e.rfind("my.toml:15:23: key 'latency.models': unknown model 'resnet51' (known: ", 0), 0u) << e;
  EXPECT_NE(e.find("bert_base"), std::string::npos) << e;
}

TEST(StudyConfig, OnnxModelPathsMustExist) {
  const std::string e = error_of(std::string(kGood) + "[latency]\nmodels = [\"/nonexistent/net.onnx\"]\n");
  EXPECT_EQ(e.rfind("my.toml:15:11: key 'latency.models': ONNX model '/nonexistent/net.onnx': no such file", 0), 0u) << e;
  // An existing file is taken as it is.
  const std::string tmp = ::testing::TempDir() + "/sb_cfg_model.onnx";
  { std::ofstream(tmp) << "x"; }
  EXPECT_EQ(error_of(std::string(kGood) + "[latency]\nmodels = [\"" + tmp + "\"]\n"), "");
}

TEST(StudyConfig, SyntaxErrorNamesTheLine) {
  const std::string e = error_of(with("min_reps = 3", "min_reps = = 3"));
  EXPECT_EQ(e.rfind("my.toml:12:", 0), 0u) << e;
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
}

TEST(StudyConfig, MissingSweepListAndNothingToMeasure) {
  EXPECT_EQ(error_of(with("devices = [\"cpu\"]\n", "")).find("key 'sweep.devices': missing or empty"), 13u);
  EXPECT_NE(error_of(with("shapes = [\"768x768x128\"]", "")).find("nothing to measure"), std::string::npos);
}

TEST(StudyConfig, ShippedStudiesParse) {
  for (const char* name : {"default", "quick", "gpu"}) {
    const std::string path = std::string(SB_SOURCE_DIR) + "/studies/" + name + ".toml";
    const sb::StudyConfig c = sb::load_study_config(path);
    EXPECT_FALSE(c.patterns.empty()) << path;
    EXPECT_FALSE(c.sparsities.empty()) << path;
  }
  const sb::StudyConfig d = sb::load_study_config(std::string(SB_SOURCE_DIR) + "/studies/default.toml");
  EXPECT_EQ(d.models, (std::vector<std::string>{"resnet50", "mobilenet_v2", "bert_base", "vit_b16"}));
  EXPECT_EQ(d.accuracy.models.size(), 5u);
  EXPECT_EQ(d.sparsities, (std::vector<double>{0.5, 0.7, 0.9}));
  EXPECT_EQ(d.batches, (std::vector<int>{1, 32}));
  EXPECT_EQ(d.threads, (std::vector<int>{1, 0}));        // 1 thread and all cores, as the issue asks
  EXPECT_EQ(d.model_threads, (std::vector<int>{1, 0}));  // the full-size models too
}

TEST(StudyConfig, GpuSection) {
  const sb::StudyConfig g = sb::load_study_config(std::string(SB_SOURCE_DIR) + "/studies/gpu.toml");
  EXPECT_EQ(g.devices, (std::vector<std::string>{"cuda"}));
  EXPECT_EQ(g.gpu.dtypes, (std::vector<std::string>{"f16"}));
  EXPECT_EQ(g.gpu.cache, "cold");
  const std::string base = "[latency]\nmodels = [\"mlp\"]\n[sweep]\npatterns = [\"dense\"]\nsparsities = [0.5]\n"
                           "batches = [1]\nthreads = [1]\ndevices = [\"cuda\"]\n";
  const sb::StudyConfig d = sb::parse_study_config(base, "g.toml");
  EXPECT_EQ(d.gpu.dtypes, (std::vector<std::string>{"f16"}));  // the default
  EXPECT_NE(error_of(base + "[gpu]\ndtypes = [\"f8\"]\n").find("key 'gpu.dtypes': unknown GPU dtype 'f8'"),
            std::string::npos);
  EXPECT_NE(error_of(base + "[gpu]\ncache = \"warm\"\n").find("key 'gpu.cache'"), std::string::npos);
  EXPECT_EQ(sb::parse_study_config(base + "[gpu]\ncache = \"stream\"\n", "g.toml").gpu.cache, "stream");
  EXPECT_NE(error_of(base + "[gpu]\ndtypes = []\n").find("key 'gpu.dtypes'"), std::string::npos);
  EXPECT_NE(error_of(base + "[gpu]\nthreads = 2\n").find("gpu.threads"), std::string::npos);
  // skip_kernels: GPU implementations the study does not run (one that lost the CUDA context).
  EXPECT_TRUE(d.gpu.skip_kernels.empty());
  EXPECT_EQ(sb::parse_study_config(base + "[gpu]\nskip_kernels = [\"spmm_csr_tc__cuda\"]\n", "g.toml").gpu.skip_kernels,
            (std::vector<std::string>{"spmm_csr_tc__cuda"}));
  if (!sb::gpu::gpu_spmm_impls().empty()) {  // a CUDA build knows the names
    const std::string e = error_of(base + "[gpu]\nskip_kernels = [\"spmm_csr_tc__cuda\", \"bogus\"]\n");
    EXPECT_NE(e.find("my.toml:10:38:"), std::string::npos) << e;  // the second item
    EXPECT_NE(e.find("key 'gpu.skip_kernels': GPU implementation bogus: no GPU implementation has that name"),
              std::string::npos) << e;
  }
}

TEST(StudyConfig, MissingFileIsNamed) {
  try {
    sb::load_study_config("/nonexistent/x.toml");
    FAIL();
  } catch (const sb::Error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/x.toml: cannot read the study config");
  }
}

TEST(StudyConfig, ModelAndAccuracyKeys) {
  const std::string good = std::string(kGood) +
                           "[latency]\nmodels = [\"mlp\"]\nbatches = [1, 8]\nthreads = [1]\nmin_reps = 4\n"
                           "[accuracy]\nmodels = [\"mlp\"]\nfinetune_epochs = 1\ntrain_subset = 5000\n"
                           "train_missing = false\n";
  const sb::StudyConfig c = sb::parse_study_config(good, "my.toml");
  EXPECT_EQ(c.model_batches, (std::vector<int>{1, 8}));
  EXPECT_EQ(c.model_threads, (std::vector<int>{1}));
  EXPECT_EQ(c.model_min_reps, 4);
  EXPECT_EQ(c.accuracy.finetune_epochs, 1);
  EXPECT_EQ(c.accuracy.train_subset, 5000);
  EXPECT_FALSE(c.accuracy.train_missing);
  EXPECT_EQ(c.accuracy.schedule, "gradual");  // the default
  EXPECT_EQ(sb::parse_study_config(good + "schedule = \"srste\"\n", "my.toml").accuracy.schedule, "srste");
  EXPECT_EQ(error_of(good + "schedule = \"cubic\"\n"),
            "my.toml:24:12: key 'accuracy.schedule': 'cubic' (expected \"gradual\", \"oneshot\" or \"srste\")");
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    return error_of(s.replace(s.find(from), from.size(), to));
  };
  EXPECT_EQ(replaced("batches = [1, 8]", "batches = [1, -8]"),
            "my.toml:16:15: key 'latency.batches': -8 is not a batch size (expected an integer >= 1)");
  EXPECT_EQ(replaced("train_missing = false", "train_missing = 0"),
            "my.toml:23:17: key 'accuracy.train_missing': expected true or false, got an integer");
  EXPECT_EQ(replaced("train_subset", "train_subst"),
            "my.toml:22:1: key 'accuracy.train_subst': unknown key (expected one of: checkpoints, epochs, "
            "finetune_epochs, models, schedule, test_subset, train_missing, train_subset)");
}
