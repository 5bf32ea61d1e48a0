// Consistency models: the boundary condition F(x, 1) = x holds exactly for any weights, the
// coefficients are EDM's in a and b, the discretisation and its curriculum are the improved
// recipe's, the loss trains (and a model that has learned the map samples the data in one step),
// and what a consistency model cannot do is refused with the reason.
#include <set>

#include "sdegen/core/error.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/consistency_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

std::shared_ptr<ConsistencyModel> tiny(const std::string& schedule, int64_t dim = 2, const std::string& inner = "edm",
                                       const std::string& prediction = "velocity") {
  ConsistencyOptions o;
  o.schedule = schedule;
  o.inner = inner;
  o.prediction = prediction;
  o.net = to_json(MlpOptions(dim).width(16).depth(2));
  if (schedule == "ve") o.sigma_max = 50.0;
  return std::make_shared<ConsistencyModel>(o);
}

TEST(Consistency, MapsTheDataEndToItselfExactlyForAnyWeights) {
  for (const std::string schedule : {"linear", "vp", "trig", "ve", "edm", "vp-cosine"})
    for (const std::string inner : {"edm", "data", "noise", "velocity", "score"}) {
      SCOPED_TRACE(schedule + " " + inner);
      torch::manual_seed(3);
      // The EDM coefficients around the network, or a network predicting as a teacher's does.
      auto model = inner == "edm" ? tiny(schedule) : tiny(schedule, 2, "prediction", inner);
      // Weights far from their initialisation: the boundary must not depend on them.
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 3.0);
      const torch::Tensor x = torch::randn({64, 2}, torch::kDouble) * 5.0;
      const torch::Tensor fx = model->map(x, torch::ones({64}, torch::kDouble));
      EXPECT_TRUE(torch::equal(fx, x / model->schedule().a(1.0)));
      // Away from the boundary the network matters.
      EXPECT_GT((model->map(x, torch::full({64}, 0.5, torch::kDouble)) - x).abs().max().item<double>(), 1e-3);
    }
}

// A student started from its teacher's weights is the teacher's data prediction between the
// boundary coefficients: F = c_skip x + (1 - c_skip a) y_hat, c_skip = s_d^2 a / (m^2 + s_d^2 a^2).
TEST(Consistency, StartingFromTheTeacherGivesItsDenoiserBetweenTheCoefficients) {
  torch::manual_seed(6);
  AffineModelOptions t = affine_model_defaults("flow", 2);
  t.net = to_json(MlpOptions(2).width(8).num_classes(3));
  AffineModel teacher(t);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : teacher.parameters()) p.add_(torch::randn_like(p));
  }
  ConsistencyOptions o;
  o.method = "distillation";
  o.net = t.net;
  o.sigma_data = 0.7;
  o.inner = "prediction";
  o.prediction = "velocity";
  ConsistencyModel student(o);
  student.start_from(teacher);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({5, 2}, torch::kDouble);
  const Condition labels(torch::tensor({0, 1, 2, -1, 1}));
  for (const double t : {0.0, 0.3, 0.9}) {
    const double a = t, b = 1 - t, sd2 = 0.49, m2 = b * b;  // linear path, sigma_min = 0
    const torch::Tensor y_hat = teacher.guided_field(labels, 1.0)->predict(x, t, Prediction::Data);
    const torch::Tensor expected = sd2 * a / (m2 + sd2 * a * a) * x + m2 / (m2 + sd2 * a * a) * y_hat;
    EXPECT_LT(test::max_abs_diff(student.map(x, torch::full({5}, t, torch::kDouble), labels), expected), 1e-12) << t;
  }
  // Refused: the EDM coefficients around the network, another prediction, a preconditioned teacher.
  ConsistencyOptions edm = o;
  edm.inner = "edm";
  EXPECT_THROW_WITH(ConsistencyModel(edm).start_from(teacher), InvalidArgument, "needs inner = \"prediction\"");
  ConsistencyOptions noise = o;
  noise.prediction = "noise";
  EXPECT_THROW_WITH(ConsistencyModel(noise).start_from(teacher), InvalidArgument, "with the teacher's prediction");
  AffineModelOptions p = affine_model_defaults("diffusion", 2);
  p.schedule = "edm";
  p.prediction = Prediction::Data;
  p.precondition = true;
  p.net = t.net;
  ConsistencyOptions data = o;
  data.schedule = "edm";
  data.sigma_max = 50.0;
  data.prediction = "data";
  EXPECT_THROW_WITH(ConsistencyModel(data).start_from(AffineModel(p)), InvalidArgument, "preconditioning");
}

TEST(Consistency, CoefficientsAreEdmsInSigmaWhereTheDataEndHasSigmaZero) {
  auto model = tiny("linear");
  const double sd = 1.0;
  for (const double t : {0.0, 0.01, 0.3, 0.7, 0.999}) {
    const torch::Tensor x = torch::ones({1, 2}, torch::kDouble);
    const auto c = model->coefficients(torch::full({1}, t, torch::kDouble), x);
    const double a = t, b = 1 - t;
    // EDM: F = c_skip(sigma) x / a + c_out(sigma) net(c_in(sigma) x / a) with sigma = b / a, sigma_min = 0,
    // written here without dividing by a (finite at t = 0).
    const double skip = sd * sd * a / (b * b + sd * sd * a * a);
    const double out = sd * b / std::sqrt(b * b + sd * sd * a * a), in = 1 / std::sqrt(b * b + sd * sd * a * a);
    EXPECT_NEAR(c.skip.item<double>(), skip, 1e-14);
    EXPECT_NEAR(c.out.item<double>(), out, 1e-14);
    EXPECT_NEAR(c.in.item<double>(), in, 1e-14);
    if (t > 0) {
      const double sigma = b / a;
      EXPECT_NEAR(c.skip.item<double>() * a, sd * sd / (sigma * sigma + sd * sd), 1e-12);  // c_skip(sigma) / a
    }
  }
}

TEST(Consistency, LevelsFollowEdmsGridFromSigmaMaxToSigmaMinThenTheTop) {
  const SchedulePtr linear = make_schedule("linear");
  const ConsistencyLevels L = consistency_levels(*linear, 11, 80.0, 0.002, 7.0);
  ASSERT_EQ(L.t.size(), 11u);
  EXPECT_NEAR(L.t[0], 1.0 / 81.0, 1e-12);  // sigma = (1 - t) / t = 80
  EXPECT_EQ(L.t[10], 1.0);  // the top, where F is the identity
  EXPECT_EQ(L.sigma[10], 0.0);
  const double hi = std::pow(80.0, 1 / 7.0), lo = std::pow(0.002, 1 / 7.0);
  for (int i = 0; i < 10; ++i) {
    const double karras = std::pow(hi + i / 9.0 * (lo - hi), 7.0);
    EXPECT_NEAR(L.sigma[i], karras, 1e-9 * karras);
    EXPECT_NEAR((1 - L.t[i]) / L.t[i], L.sigma[i], 1e-9 * L.sigma[i]);
  }
  for (int i = 1; i < 11; ++i) EXPECT_LT(L.t[i - 1], L.t[i]);
  // edm's prior end has sigma = 80 exactly: the first level is t = 0; its data end has sigma =
  // 0.002 itself, so every level is on the grid.
  const ConsistencyLevels edm = consistency_levels(*make_schedule("edm"), 5, 80.0, 0.002, 7.0);
  EXPECT_EQ(edm.t[0], 0.0);
  EXPECT_EQ(edm.t[4], 1.0);
  EXPECT_NEAR(edm.sigma[4], 0.002, 1e-12);
  // Thousands of levels stay distinct in time (the curriculum's 1281).
  EXPECT_NO_THROW(consistency_levels(*linear, 1281, 80.0, 0.002, 7.0));
  EXPECT_THROW_WITH(consistency_levels(*linear, 1, 80.0, 0.002, 7.0), InvalidArgument, "at least 2 levels");
}

TEST(Consistency, TheCurriculumDoublesTheLevelsFromStartToEnd) {
  ConsistencyOptions o;
  o.curriculum_steps = 0;
  EXPECT_EQ(consistency_level_count(o, 123456), 11);  // fixed: levels_start + 1
  o.curriculum_steps = 8000;  // log2(1280 / 10) + 1 = 8 stages of 1000 steps
  EXPECT_EQ(consistency_level_count(o, 0), 11);
  EXPECT_EQ(consistency_level_count(o, 999), 11);
  EXPECT_EQ(consistency_level_count(o, 1000), 21);
  EXPECT_EQ(consistency_level_count(o, 3500), 81);
  EXPECT_EQ(consistency_level_count(o, 7999), 1281);
  EXPECT_EQ(consistency_level_count(o, 100000), 1281);
}

TEST(Consistency, TheLossAdvancesTheCurriculumOnlyInTraining) {
  auto model = tiny("linear");
  model->train();
  const torch::Tensor y = torch::randn({32, 2}, torch::kDouble);
  const torch::Tensor loss = model->loss(y);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  EXPECT_GT(loss.item<double>(), 0.0);
  loss.backward();
  double grad = 0;
  for (const auto& p : model->parameters()) grad += p.grad().abs().sum().item<double>();
  EXPECT_GT(grad, 0.0);
  EXPECT_EQ(model->steps_taken(), 1);
  model->eval();
  model->loss(y);
  EXPECT_EQ(model->steps_taken(), 1);
}

TEST(Consistency, TrainingLearnsAOneStepMapToTheData) {
  // Two well-separated points in 2-D: one step from the prior must land near one of them.
  torch::manual_seed(0);
  ConsistencyOptions o;
  o.net = to_json(MlpOptions(2).width(64).depth(2).activation("silu"));
  o.curriculum_steps = 1500;
  o.levels_end = 80;
  auto model = std::make_shared<ConsistencyModel>(o);
  const torch::Tensor centres = torch::tensor({{-1.0, 0.0}, {1.0, 0.0}}, torch::kDouble);
  const torch::Tensor data = centres.index_select(0, torch::randint(2, {2000}, torch::kLong)) +
                             0.05 * torch::randn({2000, 2}, torch::kDouble);
  TrainOptions opts;
  opts.steps(1500).batch(128).lr(2e-3).decay("cosine").ema_decay(0.0).log_every(500);
  const test::TempDir dir("consistency_training");
  TrainSetup setup;
  setup.progress = nullptr;
  train(model, data, opts, dir.str(), setup);
  model->eval();
  torch::manual_seed(1);
  for (const int64_t steps : {1, 2}) {
    const Solution sol = consistency_sample(*model, torch::randn({500, 2}, torch::kDouble), steps);
    ASSERT_TRUE(sol.ok());
    EXPECT_EQ(sol.nfe, steps);
    // Distance to the nearer centre.
    const torch::Tensor d = torch::cdist(sol.x, centres).amin(1);
    EXPECT_LT(d.median().item<double>(), 0.25) << steps << " steps";
    // Both centres are reached.
    const double right = (sol.x.select(1, 0) > 0).to(torch::kDouble).mean().item<double>();
    EXPECT_GT(right, 0.2);
    EXPECT_LT(right, 0.8);
  }
}

TEST(Consistency, ReNoisesAtLevelsGeometricInSigmaFromOneToAQuarter) {
  auto model = tiny("linear");
  EXPECT_TRUE(consistency_sampling_times(*model, 1).empty());
  const std::vector<double> two = consistency_sampling_times(*model, 2);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_NEAR((1 - two[0]) / two[0], 0.5, 1e-12);  // sigma = (1 - t) / t
  const std::vector<double> four = consistency_sampling_times(*model, 4);
  ASSERT_EQ(four.size(), 3u);
  const double expected[] = {1.0, 0.5, 0.25};
  for (int k = 0; k < 3; ++k) EXPECT_NEAR((1 - four[k]) / four[k], expected[k], 1e-12);
}

TEST(Consistency, RefusesWhatAMapCannotDo) {
  auto model = tiny("linear");
  EXPECT_THROW_WITH(model->elbo(torch::randn({4, 2}, torch::kDouble), 1), InvalidArgument, "has no ELBO");
  EXPECT_THROW_WITH(model->sde(DiffusionSpec{}), InvalidArgument, "--solver consistency");
  SamplerOptions heun;
  EXPECT_THROW_WITH(generate(*model, torch::randn({4, 2}, torch::kDouble), heun), InvalidArgument,
                    "sample it with --solver consistency");
  SamplerOptions cs;
  cs.solver = "consistency";
  cs.steps = 3;
  EXPECT_EQ(generate(*model, torch::randn({4, 2}, torch::kDouble), cs).nfe, 3);
  ModelPtr flow = make_model(model_config("flow", 2, {{"net", {{"width", 8}}}}));
  EXPECT_THROW_WITH(generate(*flow, torch::randn({4, 2}, torch::kDouble), cs), InvalidArgument,
                    "the consistency solver samples a consistency model");
  // Distillation without a teacher, and a teacher on another schedule.
  ConsistencyOptions d;
  d.method = "distillation";
  d.net = to_json(MlpOptions(2).width(8));
  ConsistencyModel student(d);
  EXPECT_THROW_WITH(student.loss(torch::randn({4, 2}, torch::kDouble)), InvalidArgument, "needs its teacher");
  auto vp = std::make_shared<AffineModel>(affine_model_defaults("diffusion", 2));
  EXPECT_THROW_WITH(student.set_teacher(vp, SamplerOptions{}), InvalidArgument, "shares its teacher's path");
  auto teacher = std::make_shared<AffineModel>(affine_model_defaults("flow", 2));
  SamplerOptions em;
  em.solver = "euler-maruyama";
  EXPECT_THROW_WITH(student.set_teacher(teacher, em), InvalidArgument, "the teacher's step is an ODE solver");
}

TEST(Consistency, DistillationStepsTheTeachersFlowBetweenAdjacentLevels) {
  // With the teacher's step exact (the student's own target at the next level is F(x_next)), the
  // loss at one level pair is the distance between F(x_i, t_i) and F(x_next, t_{i+1}); a student
  // with N = 2 levels pairs t_0 with the top, where F is the identity: the loss is then
  // lambda d(F(x_0, t_0), x_1) with x_1 the teacher's solve from t_0 to 1.
  torch::manual_seed(4);
  auto teacher = std::make_shared<AffineModel>(affine_model_defaults("flow", 2));
  ConsistencyOptions d;
  d.method = "distillation";
  d.net = to_json(MlpOptions(2).width(8));
  d.levels_start = d.levels_end = 1;  // N = 2
  d.distance = "l2";
  d.level_sampling = "uniform";
  ConsistencyModel student(d);
  SamplerOptions step;
  step.solver = "rk4";
  step.steps = 4;
  student.set_teacher(teacher, step);
  student.eval();
  const torch::Tensor y = torch::randn({16, 2}, torch::kDouble);
  torch::manual_seed(9);
  const double loss = student.loss(y).item<double>();
  // The same draws by hand: the level pair (one choice), then the noise.
  torch::manual_seed(9);
  torch::multinomial(torch::ones({1}, torch::kDouble), 16, true);
  const torch::Tensor eps = torch::randn_like(y);
  const ConsistencyLevels L = consistency_levels(student.schedule(), 2, 80.0, 0.002, 7.0);
  const double t0 = L.t[0];
  const torch::Tensor x0 = t0 * y + (1 - t0) * eps;
  SamplerOptions o = step;
  o.t0 = t0;
  o.t1 = 1.0;
  const torch::Tensor x1 = sample(*teacher->field(), x0, o).x;
  torch::NoGradGuard no_grad;
  const torch::Tensor f0 = student.map(x0, torch::full({16}, t0, torch::kDouble));
  const double expected = ((f0 - x1).pow(2).sum(1) / (L.sigma[0] - L.sigma[1])).mean().item<double>();
  EXPECT_NEAR(loss, expected, 1e-10 * std::abs(expected));
}

// Euler and Heun teacher steps take every row at once, each row from its own level to the next,
// with the guided teacher at the rows' labels; that is the same step as one solve per level.
TEST(Consistency, BatchedTeacherStepsEqualOneSolvePerLevel) {
  torch::manual_seed(5);
  AffineModelOptions t = affine_model_defaults("flow", 2);
  t.net = to_json(MlpOptions(2).width(8).num_classes(3));
  auto teacher = std::make_shared<AffineModel>(t);
  const int64_t n = 32;
  const torch::Tensor y = torch::randn({n, 2}, torch::kDouble);
  const torch::Tensor labels = torch::randint(3, {n}, torch::kLong);
  for (const char* solver : {"euler", "heun"}) {
    ConsistencyOptions d;
    d.method = "distillation";
    d.net = to_json(MlpOptions(2).width(8).num_classes(3));
    d.levels_start = d.levels_end = 5;  // N = 6: five level pairs, several in every batch
    d.distance = "l2";
    d.level_sampling = "uniform";
    ConsistencyModel student(d);
    SamplerOptions step;
    step.solver = solver;
    step.steps = 1;
    student.set_teacher(teacher, step, /*guidance=*/2.0);
    student.eval();
    torch::manual_seed(9);
    const double loss = student.loss(y, Condition(labels)).item<double>();
    // The same draws, then the teacher's step by the general solver, one solve per level pair.
    torch::manual_seed(9);
    const torch::Tensor level = torch::multinomial(torch::ones({5}, torch::kDouble), n, true);
    const torch::Tensor eps = torch::randn_like(y);
    const ConsistencyLevels L = consistency_levels(student.schedule(), 6, 80.0, 0.002, 7.0);
    torch::NoGradGuard no_grad;
    double expected = 0.0;
    std::set<int64_t> seen;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t l = level[i].item<int64_t>();
      seen.insert(l);
      const double t0 = L.t[l], t1 = L.t[l + 1];
      const torch::Tensor x0 = (t0 * y[i] + (1 - t0) * eps[i]).unsqueeze(0);
      SamplerOptions o = step;
      o.t0 = t0;
      o.t1 = t1;
      const Condition c(labels.narrow(0, i, 1));
      const torch::Tensor x1 = sample(*teacher->guided_field(c, 2.0), x0, o).x;
      const torch::Tensor f0 = student.map(x0, torch::full({1}, t0, torch::kDouble), c);
      const torch::Tensor f1 = student.map(x1, torch::full({1}, t1, torch::kDouble), c);
      expected += (f0 - f1).pow(2).sum().item<double>() / (L.sigma[l] - L.sigma[l + 1]) / n;
    }
    EXPECT_GE(seen.size(), 4u) << solver;
    EXPECT_NEAR(loss, expected, 1e-10 * std::abs(expected)) << solver;
  }
}

}  // namespace
}  // namespace sdegen
