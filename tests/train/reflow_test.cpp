// Reflow: the pairs are the teacher's own ODE endpoints, a given coupling trains the flow on
// exactly those pairs (fused step and autograd alike), and with an exact teacher the reflowed
// flow's paths are much straighter than the teacher's.
#include "sdegen/core/error.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/reflow.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

ModelPtr tiny_flow(int64_t dim = 2) { return make_model(model_config("flow", dim, {{"net", {{"width", 16}}}})); }

TEST(Reflow, PairsAreTheTeachersOdeEndpoints) {
  torch::manual_seed(2);
  const ModelPtr teacher = tiny_flow();
  SamplerOptions rk4;
  rk4.solver = "rk4";
  rk4.steps = 8;
  torch::manual_seed(7);
  const ReflowPairs p = draw_reflow_pairs(*teacher, 50, rk4, 1.0, /*batch=*/16);
  ASSERT_EQ(p.z.sizes(), (std::vector<int64_t>{50, 2}));
  EXPECT_FALSE(p.labels.defined());
  const torch::Tensor direct = generate(*teacher, p.z, rk4).x;
  EXPECT_LT((p.x - direct).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(p.nfe, 4 * 32);  // four batches of 8 rk4 steps
}

TEST(Reflow, RefusesWhatCannotCouple) {
  const ModelPtr teacher = tiny_flow();
  SamplerOptions o;
  EXPECT_THROW_WITH(draw_reflow_pairs(*teacher, 0, o), InvalidArgument, "at least one pair");
  o.solver = "euler-maruyama";
  EXPECT_THROW_WITH(draw_reflow_pairs(*teacher, 4, o), InvalidArgument, "draws noise");
  const ModelPtr sde = make_model(model_config("sde", 2, {{"net", {{"width", 8}}}}));
  EXPECT_THROW_WITH(draw_reflow_pairs(*sde, 4, SamplerOptions{}), InvalidArgument, "has none");
  EXPECT_THROW_WITH(draw_reflow_pairs(*teacher, 4, SamplerOptions{}, 2.0), InvalidArgument, "class-conditional");
}

TEST(Reflow, AGivenCouplingIsWhatTheLossTrainsOn) {
  // loss(y) with sources S is the flow matching loss of the pairs (S, y): at the same times t,
  // |(y - S) - v(t y + (1 - t) S, t)|^2 weighted as flow matching weights it.
  torch::manual_seed(3);
  auto model = std::dynamic_pointer_cast<AffineModel>(tiny_flow());
  const torch::Tensor y = torch::randn({12, 2}, torch::kDouble), s = torch::randn({12, 2}, torch::kDouble);
  Condition c;
  c.source = s;
  torch::manual_seed(11);
  const double got = model->loss(y, c).item<double>();
  torch::manual_seed(11);
  const auto [lo, hi] = model->time_range();
  const torch::Tensor t = lo + (hi - lo) * torch::rand({12}, torch::kDouble);
  const ElboTerms ends = model->end_terms(y);
  const double expected = (model->drift_terms(y, t, s).loss.mean() - ends.reconstruction.mean() + ends.prior.mean())
                              .item<double>();
  EXPECT_NEAR(got, expected, 1e-12);
  // The fused step draws the same times and takes the same pairs.
  ASSERT_TRUE(model->has_fused_step(y));
  torch::manual_seed(11);
  const double fused = model->loss_and_gradient(y, c);
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
  torch::manual_seed(11);
  const double reference = autograd_loss_and_gradient(*model, y, c);
  EXPECT_NEAR(fused, reference, 1e-12);
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LT((grads[i] - params[i].grad()).abs().max().item<double>(), 1e-10) << i;
  // Sources of another shape are refused.
  c.source = torch::randn({12, 3}, torch::kDouble);
  EXPECT_THROW_WITH(model->loss(y, c), InvalidArgument, "given prior points must match the data");
}

TEST(Reflow, TheTrainerRefusesGivenPairsForAModelThatDrawsNone) {
  const ModelPtr ode = make_model(model_config("ode", 2, {{"net", {{"width", 8}}}}));
  TrainOptions opts;
  opts.steps(1);
  TrainSetup setup;
  setup.sources = torch::randn({20, 2}, torch::kDouble);
  setup.progress = nullptr;
  const test::TempDir dir("reflow_refused");
  EXPECT_THROW_WITH(train(ode, torch::randn({20, 2}, torch::kDouble), opts, dir.str(), setup), InvalidArgument,
                    "the 'ode' model draws no prior points");
}

TEST(Reflow, WarmStartCopiesALinearFlowOnly) {
  torch::manual_seed(1);
  const ModelPtr teacher = tiny_flow();
  const ModelPtr student = make_model(reflow_student_config(*teacher));
  EXPECT_EQ(student->kind(), "flow");
  EXPECT_TRUE(warm_start_from_teacher(*student, *teacher));
  const auto a = teacher->named_parameters(), b = student->named_parameters();
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  const ModelPtr diffusion = make_model(model_config("diffusion", 2, {{"net", {{"width", 16}}}}));
  EXPECT_FALSE(warm_start_from_teacher(*student, *diffusion));
}

TEST(Reflow, WithAnExactTeacherTheReflowedFlowIsStraighter) {
  // Teacher: the exact probability flow of a two-mode mixture under the linear schedule; its
  // paths bend where they choose a mode. The reflowed flow learns the teacher's coupling.
  GaussianMixture data;
  data.weights = torch::full({2}, 0.5, torch::kDouble);
  data.means = torch::tensor({{-2.0, 0.0}, {2.0, 0.0}}, torch::kDouble);
  data.stds = torch::full({2, 2}, 0.3, torch::kDouble);
  const GmmOracle oracle(data, make_schedule("linear"));
  torch::manual_seed(5);
  const torch::Tensor z = torch::randn({4000, 2}, torch::kDouble);
  SamplerOptions dopri;
  dopri.solver = "dopri5";
  const torch::Tensor x = sample(oracle, z, dopri).x;
  const ModelPtr student = make_model(model_config(
      "flow", 2, {{"net", {{"width", 64}, {"depth", 2}, {"activation", "silu"}, {"x_init_scale", 1.0}}}}));
  TrainOptions opts;
  opts.steps(2000).batch(256).lr(3e-3).decay("cosine").ema_decay(0.0).log_every(1000);
  const test::TempDir dir("reflow_oracle");
  TrainSetup setup;
  setup.sources = z;
  setup.progress = nullptr;
  train(student, x, opts, dir.str(), setup);
  student->eval();
  torch::manual_seed(6);
  const torch::Tensor x0 = torch::randn({2000, 2}, torch::kDouble);
  const double teacher_s = flow_straightness(probability_flow(oracle), x0, 0.0, 1.0 - 1e-3, 100);
  const double student_s = flow_straightness(*student, x0);
  EXPECT_GT(teacher_s, 0.5);
  EXPECT_LT(student_s, 0.2 * teacher_s) << "teacher " << teacher_s << ", reflowed " << student_s;
}

}  // namespace
}  // namespace sdegen
