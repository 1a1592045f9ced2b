// M4 in CI: brief training on a subset of Fashion-MNIST (skipped with its reason when the data set
// is not installed), masks holding through the optimizer, the checkpoint cache (hit, corrupt,
// mismatched), and torch vs runtime accuracy agreeing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/runtime_helpers.h"
#include "sparsebench/data/idx.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/prune/mask.h"
#include "sparsebench/runtime/passes.h"
#include "sparsebench/train/train.h"

namespace sb {
namespace {

namespace fs = std::filesystem;

bool have_data() { return fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"); }
#define SB_NEED_DATA() \
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"

TrainConfig quick(const std::string& model, const std::string& pattern, double sparsity) {
  TrainConfig c;
  c.model = model;
  c.pattern = Pattern::parse(pattern);
  c.sparsity = sparsity;
  c.threads = 2;
  c.recipe.epochs = 2;
  c.recipe.finetune_epochs = 1;
  c.recipe.train_subset = 6000;
  c.recipe.test_subset = 2000;
  c.recipe.prune_steps = 4;
  return c;
}

// Every pruned weight of the trained graph is exactly zero.
void expect_masks_hold(const Graph& g) {
  int masked = 0;
  for (const Node& n : g.nodes()) {
    if (!n.mask.defined()) continue;
    ++masked;
    const Tensor& w = n.param("weight");
    const std::uint8_t* m = n.mask.data<std::uint8_t>();
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < w.numel(); ++i) bad += m[i] == 0 && w.data<float>()[i] != 0.f;
    EXPECT_EQ(bad, 0) << n.name << ": pruned weights that are not zero";
  }
  EXPECT_GT(masked, 0);
}

class TrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sb_train_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// The CI run: a few epochs on 6000 images lift a conv net far above chance (10 %), the pruned model
// keeps its masks, and the runtime's sparse kernels agree with libtorch on every test image.
TEST_F(TrainTest, BriefTrainingLearnsAndRuntimeAgrees) {
  SB_NEED_DATA();
  TrainConfig c = quick("lenet5", "balanced:bank=8", 0.75);
  std::vector<ProgressEvent> events;
  const TrainResult r = train_and_prune(c, [&](const ProgressEvent& e) { events.push_back(e); });
  EXPECT_GT(r.dense_accuracy, 70.0);
  EXPECT_GT(r.accuracy_torch, 70.0);
  EXPECT_NEAR(r.accuracy_runtime, r.accuracy_torch, 0.1);
  EXPECT_NEAR(r.achieved_sparsity, 0.75, 0.02);
  expect_masks_hold(r.graph);
  bool saw_epoch = false, saw_eta = false;
  for (const auto& e : events) {
    saw_epoch = saw_epoch || (e.phase == "finetune" && e.accuracy >= 0);
    saw_eta = saw_eta || e.eta_s >= 0;
  }
  EXPECT_TRUE(saw_epoch);
  EXPECT_TRUE(saw_eta);
}

// Cache: the second call loads both checkpoints; a corrupt file is detected and rebuilt; Taylor
// importance and the one-shot schedule run; results are reproducible from the seed.
TEST_F(TrainTest, CheckpointCacheAndTaylor) {
  SB_NEED_DATA();
  TrainConfig c = quick("mlp", "unstructured", 0.8);
  c.recipe.epochs = 1;
  c.cache_dir = dir_.string();
  c.schedule = Schedule::oneshot;
  c.importance = Importance::taylor;
  const TrainResult a = train_and_prune(c);
  EXPECT_FALSE(a.pruned_cached);
  EXPECT_EQ(expected_checkpoint(c), a.checkpoint);  // what the study checks before it trains
  {
    TrainConfig dense = c;
    dense.pattern = Pattern{};
    dense.sparsity = 0;
    EXPECT_TRUE(fs::exists(expected_checkpoint(dense))) << expected_checkpoint(dense);
  }
  EXPECT_GT(a.accuracy_torch, 60.0);
  EXPECT_NEAR(a.accuracy_runtime, a.accuracy_torch, 0.1);
  expect_masks_hold(a.graph);
  ASSERT_TRUE(fs::exists(a.checkpoint));
  const TrainResult b = train_and_prune(c);
  EXPECT_TRUE(b.pruned_cached);
  EXPECT_DOUBLE_EQ(b.accuracy_torch, a.accuracy_torch);
  EXPECT_DOUBLE_EQ(b.accuracy_runtime, a.accuracy_runtime);
  {  // one flipped byte in the middle
    std::fstream f(a.checkpoint, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(a.checkpoint) / 2));
    f.put('\x5a');
  }
  const TrainResult d = train_and_prune(c);
  EXPECT_FALSE(d.pruned_cached);
  EXPECT_TRUE(d.dense_cached);  // the dense model was still good
  EXPECT_NEAR(d.accuracy_torch, a.accuracy_torch, 0.5);  // same seed: the same run up to thread order
}

// SR-STE: masks re-derived from the dense shadow weights at every step move away from the
// one-shot mask of the same pretrained model, stay valid 2:4 (at most 2 of every 4 consecutive
// weights of a row), hold exactly at the end, and the runtime agrees with libtorch.
TEST_F(TrainTest, SrsteMasksMoveAndStayNm) {
  SB_NEED_DATA();
  TrainConfig c = quick("mlp", "nm:2:4", 0);
  c.recipe.epochs = 1;
  c.cache_dir = dir_.string();
  c.schedule = Schedule::oneshot;
  const TrainResult once = train_and_prune(c);
  c.schedule = Schedule::srste;
  const TrainResult ste = train_and_prune(c);
  EXPECT_TRUE(ste.dense_cached);  // the same pretrained model as the one-shot run
  EXPECT_FALSE(ste.pruned_cached);  // its own checkpoint key
  EXPECT_EQ(expected_checkpoint(c), ste.checkpoint);
  EXPECT_NE(ste.checkpoint, once.checkpoint);
  EXPECT_GT(ste.accuracy_torch, 60.0);
  EXPECT_NEAR(ste.accuracy_runtime, ste.accuracy_torch, 0.1);
  EXPECT_DOUBLE_EQ(ste.achieved_sparsity, 0.5);
  expect_masks_hold(ste.graph);
  std::int64_t moved = 0, groups = 0, bad_groups = 0;
  for (const Node& n : ste.graph.nodes()) {
    if (!n.mask.defined()) continue;
    const Node& o = once.graph.nodes()[static_cast<std::size_t>(once.graph.find_node(n.name))];
    ASSERT_TRUE(o.mask.defined()) << n.name;
    const std::uint8_t* m = n.mask.data<std::uint8_t>();
    const std::uint8_t* mo = o.mask.data<std::uint8_t>();
    for (std::int64_t i = 0; i < n.mask.numel(); ++i) moved += (m[i] != 0) != (mo[i] != 0);
    const std::int64_t cols = n.mask.shape()[1];
    for (std::int64_t r = 0; r < n.mask.shape()[0]; ++r)
      for (std::int64_t g = 0; g + 4 <= cols; g += 4, ++groups) {
        int kept = 0;
        for (int j = 0; j < 4; ++j) kept += m[r * cols + g + j] != 0;
        bad_groups += kept > 2;
      }
  }
  EXPECT_GT(groups, 0);
  EXPECT_EQ(bad_groups, 0);
  EXPECT_GT(moved, 0) << "SR-STE ended on exactly the one-shot mask";
}

TEST(Train, SrsteRejectsWhatItCannotDo) {
  EXPECT_EQ(parse_schedule("srste"), Schedule::srste);
  EXPECT_STREQ(schedule_name(Schedule::srste), "srste");
  TrainConfig c = quick("mlp", "nm:2:4", 0);
  c.schedule = Schedule::srste;
  c.importance = Importance::taylor;
  EXPECT_THROW(train_and_prune(c), Error);
  c.importance = Importance::magnitude;
  c.pattern = Pattern::parse("filter");
  c.sparsity = 0.5;
  EXPECT_THROW(train_and_prune(c), Error);
}

TEST(Checkpoint, RoundTripAndMismatch) {
  const fs::path dir = fs::temp_directory_path() / ("sb_ckpt_" + std::to_string(::getpid()));
  Graph g = build_model("resnet_mini");
  prune(g, PruneOptions{Pattern::parse("block:4x4"), 0.5});
  const std::string key = checkpoint_key("resnet_mini", default_recipe("resnet_mini"), Pattern::parse("block:4x4"), 0.5, 1);
  const std::string path = checkpoint_path(dir.string(), key, "resnet_mini");
  save_checkpoint(path, key, g, "{\"x\":1}");
  Graph h = build_model("resnet_mini", ModelOptions{1, 0, 42});
  std::string meta, why;
  ASSERT_TRUE(load_checkpoint(path, key, h, meta, why)) << why;
  EXPECT_EQ(meta, "{\"x\":1}");
  for (const Node& n : g.nodes()) {
    const Node& m = h.nodes()[h.find_node(n.name)];
    for (const auto& [k, t] : n.params) EXPECT_EQ(test::rel_error(m.param(k), t), 0.0) << n.name << "." << k;
    EXPECT_EQ(n.mask.defined(), m.mask.defined()) << n.name;
    if (n.mask.defined()) EXPECT_EQ(m.pattern, n.pattern);
  }
  EXPECT_FALSE(load_checkpoint(path, key + "x", h, meta, why));
  EXPECT_NE(why.find("another key"), std::string::npos) << why;
  Graph other = build_model("lenet5");
  EXPECT_FALSE(load_checkpoint(path, key, other, meta, why));
  // The same parameters in another architecture (one stride changed): refused by its signature.
  Graph restrided = build_model("resnet_mini");
  restrided.nodes()[static_cast<std::size_t>(restrided.find_node("layer1.0.conv1"))].attrs.stride = {2, 2};
  EXPECT_FALSE(load_checkpoint(path, key, restrided, meta, why));
  EXPECT_NE(why.find("another definition of the model"), std::string::npos) << why;
  EXPECT_FALSE(load_checkpoint((dir / "absent").string(), key, h, meta, why));
  fs::resize_file(path, fs::file_size(path) - 10);
  EXPECT_FALSE(load_checkpoint(path, key, h, meta, why));
  EXPECT_FALSE(why.empty());
  fs::remove_all(dir);
}

TEST(Recipe, DefaultsAndKey) {
  const TrainRecipe r = default_recipe("vit_mini");
  EXPECT_EQ(r.optimizer, "adamw");
  EXPECT_EQ(r.augment, 0);
  EXPECT_DOUBLE_EQ(r.label_smoothing, 0.1);
  EXPECT_EQ(default_recipe("resnet_mini").finetune_epochs, 9);
  TrainRecipe o;
  o.epochs = 3;
  EXPECT_EQ(default_recipe("resnet_mini", o).epochs, 3);
  EXPECT_THROW(default_recipe("resnet50"), Error);
  EXPECT_NE(checkpoint_key("mlp", r, Pattern::parse("unstructured"), 0.5, 1),
            checkpoint_key("mlp", r, Pattern::parse("unstructured"), 0.5, 2));
  EXPECT_THROW(parse_schedule("cubic"), Error);
}

TEST(Recipe, LabelSmoothingKeepsOldKeysAndIsValidated) {
  // A field added after checkpoints were cached must not change the key of a recipe without it.
  TrainRecipe plain = default_recipe("resnet_mini");
  EXPECT_EQ(plain.to_string().find("label_smoothing"), std::string::npos) << plain.to_string();
  TrainRecipe o;
  o.label_smoothing = 0.1;
  const TrainRecipe smooth = default_recipe("resnet_mini", o);
  EXPECT_NE(smooth.to_string().find("label_smoothing=0.1"), std::string::npos) << smooth.to_string();
  EXPECT_NE(checkpoint_key("resnet_mini", plain, Pattern{}, 0, 1), checkpoint_key("resnet_mini", smooth, Pattern{}, 0, 1));
  o.label_smoothing = 1.0;
  EXPECT_THROW(default_recipe("resnet_mini", o), Error);
  TrainRecipe ft;
  ft.finetune_lr = 0.03;
  EXPECT_DOUBLE_EQ(default_recipe("resnet_mini", ft).finetune_lr, 0.03);
}

}  // namespace
}  // namespace sb
