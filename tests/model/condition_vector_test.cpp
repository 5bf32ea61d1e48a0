// Condition vectors (Condition::vector, --condition-columns): the MLP's condition inputs and their
// presence flag, the kernel's condition inputs against the module, dropout and guidance through
// the affine model, the trainer's checks, a model that learns to follow its condition, and the
// fast sampler against generate().
#include <limits>

#include "sdegen/core/error.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/fast_sampler.h"
#include "sdegen/net/mlp_kernel.h"
#include "sdegen/sample/sampler.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"

namespace sdegen {
namespace {

Mlp conditional_mlp(int64_t d, int64_t k, int64_t classes = 0) {
  torch::manual_seed(5);
  Mlp net(MlpOptions(d).width(12).depth(2).time_embedding("sinusoidal").embedding_dim(4).condition_dim(k).num_classes(
      classes));
  net->to(torch::kDouble);
  return net;
}

Condition vector_condition(const torch::Tensor& v, const torch::Tensor& present = {}) {
  Condition c;
  c.vector = v;
  c.present = present;
  return c;
}

std::shared_ptr<AffineModel> flow_model(int64_t d, int64_t k, double p_uncond = 0.1, const std::string& kind = "flow") {
  torch::manual_seed(3);
  AffineModelOptions o = affine_model_defaults(kind, d);
  o.net = to_json(MlpOptions(d).width(16).depth(2).condition_dim(k));
  o.p_uncond = p_uncond;
  return std::make_shared<AffineModel>(o);
}

TEST(ConditionVector, TheNetReadsItsConditionAndIgnoresTheValuesOfAnAbsentOne) {
  Mlp net = conditional_mlp(2, 3);
  const torch::Tensor x = torch::randn({4, 2}, torch::kDouble), t = torch::rand({4}, torch::kDouble);
  const torch::Tensor c = torch::randn({4, 3}, torch::kDouble);
  const torch::Tensor with = net->forward(x, t, vector_condition(c));
  const torch::Tensor other = net->forward(x, t, vector_condition(c + 1.0));
  const torch::Tensor none = net->forward(x, t);
  EXPECT_GT(test::max_abs_diff(with, other), 1e-6);  // the condition is read
  EXPECT_GT(test::max_abs_diff(with, none), 1e-6);
  // Absent rows (presence 0) are the null condition whatever their values; present rows are as given.
  const torch::Tensor present = torch::tensor({1.0, 0.0, 1.0, 0.0}, torch::kDouble);
  const torch::Tensor mixed = net->forward(x, t, vector_condition(c + 7.0, present));
  const torch::Tensor shifted = net->forward(x, t, vector_condition(c + 7.0));
  for (int64_t i : {1, 3}) EXPECT_LT(test::max_abs_diff(mixed[i], none[i]), 1e-15);
  for (int64_t i : {0, 2}) EXPECT_LT(test::max_abs_diff(mixed[i], shifted[i]), 1e-15);
}

// A net with classes and a condition vector takes either alone: the other is its null.
TEST(ConditionVector, ANetWithClassesTooTakesAVectorAlone) {
  Mlp net = conditional_mlp(2, 3, /*classes=*/4);
  const torch::Tensor x = torch::randn({4, 2}, torch::kDouble), t = torch::rand({4}, torch::kDouble);
  const torch::Tensor c = torch::randn({4, 3}, torch::kDouble);
  Condition both = vector_condition(c);
  both.labels = torch::full({4}, kNullLabel, torch::kLong);
  EXPECT_LT(test::max_abs_diff(net->forward(x, t, vector_condition(c)), net->forward(x, t, both)), 1e-15);
  Condition labels_only(torch::tensor({0, 1, 2, 3}, torch::kLong));
  EXPECT_GT(test::max_abs_diff(net->forward(x, t, labels_only), net->forward(x, t)), 1e-6);
}

TEST(ConditionVector, BadConditionsAreRefusedByName) {
  Mlp net = conditional_mlp(2, 3);
  const torch::Tensor x = torch::randn({4, 2}, torch::kDouble), t = torch::rand({4}, torch::kDouble);
  EXPECT_THROW_WITH(net->forward(x, t, vector_condition(torch::randn({4, 2}, torch::kDouble))), InvalidArgument,
                    "expects a condition vector of shape [batch, condition_dim] = [4, 3], got [4, 2]");
  EXPECT_THROW_WITH(net->forward(x, t, vector_condition(torch::randn({3, 3}, torch::kDouble))), InvalidArgument,
                    "[4, 3], got [3, 3]");
  torch::Tensor nan = torch::zeros({4, 3}, torch::kDouble);
  nan[2][1] = std::nan("");
  EXPECT_THROW_WITH(net->forward(x, t, vector_condition(nan)), InvalidArgument, "NaN or infinite");
  EXPECT_THROW_WITH(net->forward(x, t, vector_condition(torch::zeros({4, 3}, torch::kDouble),
                                                        torch::ones({3}, torch::kDouble))),
                    InvalidArgument, "presence of shape [batch] = [4]");
  Mlp plain(MlpOptions(2));
  plain->to(torch::kDouble);
  EXPECT_THROW_WITH(plain->forward(x, t, vector_condition(torch::zeros({4, 3}, torch::kDouble))), InvalidArgument,
                    "takes no condition vector (condition_dim = 0)");
}

// The values are checked once where rows come in (checked_finite), and the mark survives the
// row operations, so that a training step or a solver's evaluations skip the per-call check.
TEST(ConditionVector, FinitenessIsCheckedOnceAndTheMarkIsKept) {
  torch::Tensor nan = torch::zeros({4, 3}, torch::kDouble);
  nan[1][0] = std::numeric_limits<double>::infinity();
  EXPECT_THROW_WITH(checked_finite("the sampler", vector_condition(nan)), InvalidArgument,
                    "the sampler was given a condition vector with a NaN or infinite value");
  const Condition ok = checked_finite("the sampler", vector_condition(torch::randn({4, 3}, torch::kDouble)));
  EXPECT_TRUE(ok.vector_finite);
  EXPECT_FALSE(vector_condition(torch::randn({4, 3}, torch::kDouble)).vector_finite);
  EXPECT_TRUE(ok.slice(1, 2).vector_finite);
  EXPECT_TRUE(ok.select(torch::tensor({0, 3}, torch::kLong)).vector_finite);
  EXPECT_TRUE(with_null_rows(ok).vector_finite);
  EXPECT_TRUE(drop_rows(ok, torch::tensor({true, false, true, false})).vector_finite);
  // A marked condition is trusted by the network (the mark is the caller's promise) ...
  Mlp net = conditional_mlp(2, 3);
  const torch::Tensor x = torch::randn({4, 2}, torch::kDouble), t = torch::rand({4}, torch::kDouble);
  Condition promised = vector_condition(nan);
  promised.vector_finite = true;
  EXPECT_NO_THROW(net->forward(x, t, promised));
  // ... and guidance checks an unmarked observation once, before any evaluation.
  const auto flow = flow_model(2, 3);
  EXPECT_THROW_WITH(flow->guided_field(vector_condition(nan), 1.0), InvalidArgument,
                    "guidance was given a condition vector with a NaN or infinite value");
  EXPECT_THROW_WITH(flow->guided_field(vector_condition(nan), 2.5), InvalidArgument, "NaN or infinite");
}

TEST(ConditionVector, TheConfigRoundTripsAndOldConfigsHaveNone) {
  Mlp net = conditional_mlp(2, 3);
  const nlohmann::json j = net->config();
  EXPECT_EQ(j.at("condition_dim").get<int64_t>(), 3);
  EXPECT_EQ(mlp_options_from_json(j).condition_dim(), 3);
  nlohmann::json old = to_json(MlpOptions(2));
  EXPECT_FALSE(old.contains("condition_dim"));  // unchanged for nets without one
  EXPECT_EQ(mlp_options_from_json(old).condition_dim(), 0);
  old["condition_dim"] = -1;
  EXPECT_THROW_WITH(mlp_options_from_json(old), InvalidArgument, "condition_dim must be >= 0");
}

TEST(ConditionVector, TheKernelWithConditionInputsIsTheModule) {
  for (const int64_t classes : {0}) {
    Mlp net = conditional_mlp(3, 2, classes);
    const int64_t n = 5;
    const torch::Tensor x = torch::randn({n, 3}, torch::kDouble), t = torch::rand({n}, torch::kDouble);
    const torch::Tensor c = torch::randn({n, 2}, torch::kDouble);
    const torch::Tensor present = torch::tensor({1.0, 1.0, 0.0, 1.0, 0.0}, torch::kDouble);
    std::string why;
    EXPECT_FALSE(MlpKernel::supports(*net, &why));  // a caller that passes no condition would mislead it
    EXPECT_NE(why.find("condition vector"), std::string::npos) << why;
    const MlpKernel kernel(*net, /*condition_inputs=*/true);
    ASSERT_EQ(kernel.condition_width(), 3);
    const Condition cond = vector_condition(c, present);
    const torch::Tensor features = condition_features("test", cond, 2, n, torch::kDouble, torch::kCPU).contiguous();
    MlpTape tape;
    kernel.forward(x.data_ptr<double>(), t.data_ptr<double>(), n, {}, tape, features.data_ptr<double>());
    const torch::Tensor raw = torch::from_blob(tape.output(), {n, 3}, torch::kDouble).clone();
    EXPECT_LT(test::max_abs_diff(raw, net->forward(x, t, cond)), 1e-13);
    kernel.forward(x.data_ptr<double>(), t.data_ptr<double>(), n, {}, tape, nullptr);
    const torch::Tensor null = torch::from_blob(tape.output(), {n, 3}, torch::kDouble).clone();
    EXPECT_LT(test::max_abs_diff(null, net->forward(x, t)), 1e-13);
  }
}

TEST(ConditionVector, DroppingEveryRowIsTheUnconditionalLossAndGuidanceMixesTheTwo) {
  const int64_t n = 6;
  const torch::Tensor y = torch::randn({n, 2}, torch::kDouble), c = torch::randn({n, 3}, torch::kDouble);
  auto all_dropped = flow_model(2, 3, /*p_uncond=*/1.0);
  torch::manual_seed(9);
  const double dropped = all_dropped->loss(y, vector_condition(c)).item<double>();
  torch::manual_seed(9);
  const double unconditional = all_dropped->loss(y).item<double>();
  EXPECT_NEAR(dropped, unconditional, 1e-14);
  auto never = flow_model(2, 3, /*p_uncond=*/0.0);
  torch::manual_seed(9);
  EXPECT_GT(std::abs(never->loss(y, vector_condition(c)).item<double>() - unconditional), 1e-6);

  // math.md: guided = uncond + w (cond - uncond).
  auto m = flow_model(2, 3);
  const torch::Tensor x = torch::randn({n, 2}, torch::kDouble);
  const Condition cond = vector_condition(c);
  const torch::Tensor u = m->field()->predict(x, 0.4, Prediction::Velocity);
  const torch::Tensor k = m->guided_field(cond, 1.0)->predict(x, 0.4, Prediction::Velocity);
  const torch::Tensor g = m->guided_field(cond, 2.5)->predict(x, 0.4, Prediction::Velocity);
  EXPECT_LT(test::max_abs_diff(m->guided_field(cond, 0.0)->predict(x, 0.4, Prediction::Velocity), u), 1e-15);
  EXPECT_LT(test::max_abs_diff(k, m->predict_native(x, torch::full({}, 0.4, torch::kDouble), cond)), 1e-14);
  EXPECT_LT(test::max_abs_diff(g, u + 2.5 * (k - u)), 1e-12);
  EXPECT_GT(test::max_abs_diff(k, u), 1e-6);
}

TEST(ConditionVector, TheTrainerChecksTheConditionsItIsGiven) {
  auto m = flow_model(1, 1);
  TrainSetup setup;
  setup.progress = nullptr;
  const torch::Tensor y = torch::randn({20, 1}, torch::kDouble);
  const std::string out = test::temp_path("condition_trainer_checks");
  std::filesystem::remove_all(out);
  const TrainOptions o = TrainOptions().steps(2).batch(4);
  EXPECT_THROW_WITH(train(m, y, o, out, setup), InvalidArgument, "needs training conditions");
  setup.conditions = torch::randn({19, 1}, torch::kDouble);
  EXPECT_THROW_WITH(train(m, y, o, out, setup), InvalidArgument, "conditions must be floating point of shape [20, 1]");
  setup.conditions = torch::full({20, 1}, std::nan(""), torch::kDouble);
  EXPECT_THROW_WITH(train(m, y, o, out, setup), InvalidArgument, "training conditions contain NaN");
  setup.conditions = torch::randn({20, 1}, torch::kDouble);
  EXPECT_THROW_WITH(train(flow_model(1, 0), y, o, out, setup), InvalidArgument,
                    "takes no condition vector but training conditions were given");
  EXPECT_FALSE(std::filesystem::exists(out + "/checkpoint"));
}

// y = c + small noise with c in {-2, 2}: the conditional samples follow c, the unconditional ones
// (the null condition) cover both, and guidance beyond 1 keeps the conditional mode.
TEST(ConditionVector, AFlowLearnsToFollowItsCondition) {
  torch::manual_seed(0);
  const int64_t n = 400;
  const torch::Tensor c = torch::where(torch::rand({n, 1}, torch::kDouble) < 0.5, -2.0, 2.0).to(torch::kDouble);
  const torch::Tensor y = c + 0.2 * torch::randn({n, 1}, torch::kDouble);
  auto m = flow_model(1, 1, 0.2);
  TrainSetup setup;
  setup.progress = nullptr;
  setup.conditions = c;
  setup.validator = {};
  const std::string out = test::temp_path("condition_follows");
  std::filesystem::remove_all(out);
  train(m, y, TrainOptions().steps(1500).batch(128).lr(3e-3).threads(1).decay("cosine"), out, setup);
  m->eval();
  torch::NoGradGuard no_grad;
  const int64_t k = 300;
  const torch::Tensor x0 = torch::randn({k, 1}, torch::kDouble);
  SamplerOptions s;
  s.solver = "heun";
  s.steps = 20;
  for (const double value : {-2.0, 2.0}) {
    Guidance g;
    g.condition.vector = torch::full({k, 1}, value, torch::kDouble);
    const Solution sol = generate(*m, x0, s, g);
    ASSERT_TRUE(sol.ok());
    EXPECT_NEAR(sol.x.mean().item<double>(), value, 0.15) << "condition " << value;
    EXPECT_LT((sol.x - value).abs().gt(1.0).to(torch::kDouble).mean().item<double>(), 0.03) << "condition " << value;
    // Guidance beyond 1 pushes away from the unconditional model's other mode: the same side, further out.
    g.weight = 2.0;
    const double guided = generate(*m, x0, s, g).x.mean().item<double>();
    EXPECT_GT(guided * value, sol.x.mean().item<double>() * value - 0.05) << "guided, condition " << value;
    EXPECT_NEAR(guided, value, 0.5) << "guided, condition " << value;
  }
  const torch::Tensor free = generate(*m, x0, s).x;
  const double upper = free.gt(0).to(torch::kDouble).mean().item<double>();
  EXPECT_GT(upper, 0.3);
  EXPECT_LT(upper, 0.7);
}

TEST(ConditionVector, TheFastSamplerIsGenerate) {
  auto m = flow_model(3, 2);
  m->eval();
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const int64_t n = 3;
  const torch::Tensor x0 = torch::randn({n, 3}, torch::kDouble), c = torch::randn({n, 2}, torch::kDouble);
  for (const std::string solver : {"euler", "heun"})
    for (const double w : {1.0, 2.5})
      for (const bool observed : {true, false}) {
        FastSamplerOptions o;
        o.solver = solver, o.steps = 7, o.guidance = w, o.max_batch = n;
        FastSampler fast(*m, o);
        EXPECT_EQ(fast.evaluations(), solver == "heun" ? 14 : 7);
        torch::Tensor out = torch::empty_like(x0);
        fast.sample(x0.data_ptr<double>(), observed ? c.data_ptr<double>() : nullptr, n, out.data_ptr<double>());
        SamplerOptions s;
        s.solver = solver, s.steps = 7, s.grid = "uniform";
        Guidance g;
        if (observed) g.condition.vector = c, g.weight = w;
        const torch::Tensor reference = generate(*m, x0, s, g).x;
        EXPECT_LT(test::max_abs_diff(out, reference), 1e-12) << solver << " w " << w << " observed " << observed;
        // Row by row at batch 1 gives the same samples.
        FastSamplerOptions one = o;
        one.max_batch = 1;
        FastSampler single(*m, one);
        torch::Tensor row = torch::empty({1, 3}, torch::kDouble);
        single.sample(x0[1].contiguous().data_ptr<double>(), observed ? c[1].contiguous().data_ptr<double>() : nullptr,
                      1, row.data_ptr<double>());
        EXPECT_LT(test::max_abs_diff(row[0], reference[1]), 1e-12);
      }
}

TEST(ConditionVector, TheFastSamplerRefusesWhatItCannotRun) {
  auto m = flow_model(2, 1);
  FastSamplerOptions o;
  o.solver = "rk4";
  EXPECT_THROW_WITH(FastSampler(*m, o), InvalidArgument, "solver must be euler or heun");
  o = {};
  o.steps = 0;
  EXPECT_THROW_WITH(FastSampler(*m, o), InvalidArgument, "steps must be >= 1");
  EXPECT_THROW_WITH(FastSampler(*flow_model(2, 1, 0.1, "diffusion"), FastSamplerOptions{}), InvalidArgument,
                    "the fast sampler integrates a velocity");
  o = {};
  o.guidance = 2.0;
  EXPECT_THROW_WITH(FastSampler(*flow_model(2, 1, 0.0), o), InvalidArgument, "trained without condition dropout");
  FastSampler fast(*m, FastSamplerOptions{});
  std::vector<double> x(4), out(4);
  EXPECT_THROW_WITH(fast.sample(x.data(), nullptr, 2, out.data()), InvalidArgument, "n must be in [1, 1], got 2");
}

}  // namespace
}  // namespace sdegen
