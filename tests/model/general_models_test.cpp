// The general sde model and the continuous normalizing flow (ode): boundary conditions,
// closed-form derivatives, the ELBO's drift term against the process's conditional drift,
// exact likelihood against the adaptive solver, training, configuration and sampling rules.
#include "sdegen/core/error.h"
#include "sdegen/eval/likelihood.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/ode_model.h"
#include "sdegen/model/sde_model.h"
#include "support/support.h"

namespace sdegen {
namespace {
using test::max_abs_diff;

std::shared_ptr<SdeModel> tiny_sde(int64_t dim = 2) {
  SdeModelOptions o;
  o.net = to_json(MlpOptions(dim).width(16).depth(2).activation("tanh").time_embedding("fourier").fourier_scale(1.0));
  auto m = std::make_shared<SdeModel>(o);
  m->to(torch::kDouble);
  return m;
}

std::shared_ptr<OdeModel> tiny_ode(int64_t dim = 2, bool exact = true) {
  OdeModelOptions o;
  o.net = to_json(MlpOptions(dim).width(16).depth(2).activation("tanh"));
  o.steps = 20;
  o.solver = "rk4";
  o.exact_divergence = exact;
  auto m = std::make_shared<OdeModel>(o);
  m->to(torch::kDouble);
  return m;
}

TEST(SdeModel, BoundaryConditionsHoldForAnyWeights) {
  auto m = tiny_sde();
  const torch::Tensor y = torch::randn({7, 2});
  const ProcessMoments start = m->moments(y, torch::zeros({7}));
  const ProcessMoments end = m->moments(y, torch::ones({7}));
  EXPECT_LT(start.alpha.abs().max().item<double>(), 1e-15);
  EXPECT_LT(max_abs_diff(start.beta, torch::ones_like(y)), 1e-15);
  EXPECT_LT(max_abs_diff(end.alpha, y), 1e-15);
  EXPECT_LT(max_abs_diff(end.beta, torch::full_like(y, m->options().b1)), 1e-15);
  const ElboTerms terms = m->elbo(y, 0);
  EXPECT_LT(terms.prior.abs().max().item<double>(), 1e-12);  // q_0 is the prior
}

TEST(SdeModel, TimeDerivativesMatchFiniteDifferences) {
  auto m = tiny_sde();
  const torch::Tensor y = torch::randn({9, 2});
  const torch::Tensor t = torch::rand({9}) * 0.9 + 0.05;
  const ProcessMoments mo = m->moments(y, t);
  const auto alpha = [&](const torch::Tensor& s) { return m->moments(y, s).alpha; };
  const auto beta = [&](const torch::Tensor& s) { return m->moments(y, s).beta; };
  EXPECT_LT(max_abs_diff(mo.dalpha, test::central_difference(alpha, t)), 1e-6);
  EXPECT_LT(max_abs_diff(mo.dbeta, test::central_difference(beta, t)), 1e-6);
}

TEST(SdeModel, DriftTermIsTheGirsanovIntegrandOfTheConditionalDrift) {
  auto m = tiny_sde();
  const torch::Tensor y = torch::randn({11, 2});
  const torch::Tensor t = torch::rand({11});
  const torch::Tensor eps = torch::randn_like(y);
  const auto process = m->process();
  const torch::Tensor x = process->sample(y, t, eps).x;
  const torch::Tensor sigma = m->sigma(t).unsqueeze(1);
  const torch::Tensor g = process->conditional_drift(x, y, t, sigma);
  const torch::Tensor expected = girsanov_integrand(m->drift(x, t), g, sigma);
  EXPECT_LT(max_abs_diff(m->drift_integrand(y, t, eps), expected), 1e-10);
}

TEST(SdeModel, SigmaIsPiecewiseLogLinearAndStartsAtTheReverseDiffusion) {
  auto m = tiny_sde();
  const double b1 = m->options().b1;
  // Knot values: sigma^2 = 2 (1 - t (1 - b1))(1 - b1).
  for (double t : {0.0, 1.0 / 15.0, 0.5 + 0.5 / 15.0, 1.0}) {
    const double expected = std::sqrt(2.0 * (1.0 - t * (1.0 - b1)) * (1.0 - b1));
    EXPECT_NEAR(m->sigma(torch::full({}, t)).item<double>(), expected, 1e-12) << t;
  }
  // Between knots, log sigma is the average of its neighbours.
  const double lo = std::log(m->sigma(torch::full({}, 2.0 / 15.0)).item<double>());
  const double hi = std::log(m->sigma(torch::full({}, 3.0 / 15.0)).item<double>());
  EXPECT_NEAR(std::log(m->sigma(torch::full({}, 2.5 / 15.0)).item<double>()), 0.5 * (lo + hi), 1e-12);
}

TEST(OdeModel, ZeroVelocityIsTheIdentityFlow) {
  OdeModelOptions o;
  o.net = to_json(MlpOptions(3).width(8).zero_init_output(true));
  o.steps = 3;
  OdeModel m(o);
  m.to(torch::kDouble);
  const torch::Tensor y = torch::randn({5, 3});
  const FlowLikelihood l = m.likelihood(y);
  const torch::Tensor expected = -0.5 * (y * y).sum(1) - 1.5 * std::log(2.0 * M_PI);
  EXPECT_LT(max_abs_diff(l.log_prob, expected), 1e-12);
  EXPECT_LT(max_abs_diff(l.x0, y), 1e-12);
}

TEST(OdeModel, TrainingLikelihoodMatchesTheAdaptiveSolver) {
  auto m = tiny_ode();
  {
    // Make the flow non-trivial.
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.mul_(3.0);
  }
  const torch::Tensor y = torch::randn({16, 2});
  torch::NoGradGuard no_grad;
  const FlowLikelihood l = m->likelihood(y);
  const auto sde = m->sde(DiffusionSpec{});
  const VectorField v = [&](double t, const torch::Tensor& x) { return sde->drift(x, t); };
  LikelihoodOptions lo;
  lo.adaptive = {1e-9, 1e-9};
  const LikelihoodResult ref = log_likelihood(v, y, 1.0, lo);
  EXPECT_LT(max_abs_diff(l.log_prob, ref.log_prob), 1e-4);
  const ElboTerms terms = m->elbo(y, 1);
  EXPECT_LT(max_abs_diff(terms.total(), l.log_prob), 1e-12);
}

TEST(OdeModel, HutchinsonEstimateIsUnbiased) {
  torch::manual_seed(11);
  OdeModelOptions o = tiny_ode(3)->options();
  o.steps = 4;
  auto exact = std::make_shared<OdeModel>(o);
  exact->to(torch::kDouble);
  o.exact_divergence = false;
  OdeModel hutch(o);
  hutch.to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    auto from = exact->named_parameters();
    for (auto& p : hutch.named_parameters()) p.value().copy_(from[p.key()] * 3.0);
    for (auto& p : exact->parameters()) p.mul_(3.0);
  }
  const torch::Tensor y = torch::randn({4, 3});
  torch::NoGradGuard no_grad;
  const torch::Tensor truth = exact->likelihood(y).log_prob;
  // Independent one-probe estimates: their mean is within a few standard errors of the truth.
  const int runs = 400;
  std::vector<torch::Tensor> draws;
  for (int r = 0; r < runs; ++r) draws.push_back(hutch.likelihood(y).log_prob);
  const torch::Tensor all = torch::stack(draws);
  const torch::Tensor stderr_ = all.std(0) / std::sqrt(static_cast<double>(runs));
  ASSERT_GT(stderr_.min().item<double>(), 1e-6);  // the estimator is genuinely random
  const torch::Tensor z = ((all.mean(0) - truth) / stderr_).abs();
  EXPECT_LT(z.max().item<double>(), 4.0) << "mean " << all.mean(0) << " truth " << truth;
}

// Trains on a shifted Gaussian and checks the loss falls, with the same noise for both looks.
void expect_training_reduces_loss(GenerativeModel& m, int steps) {
  torch::manual_seed(5);
  const torch::Tensor y = torch::randn({128, 2}) * 0.5 + 1.0;
  torch::optim::Adam opt(m.parameters(), torch::optim::AdamOptions(1e-2));
  auto eval_loss = [&] {
    torch::manual_seed(99);
    return m.loss(y).item<double>();
  };
  const double before = eval_loss();
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    m.loss(y).backward();
    opt.step();
  }
  EXPECT_LT(eval_loss(), before - 0.1) << m.kind();
}

TEST(GeneralModels, AFewStepsReduceTheLoss) {
  expect_training_reduces_loss(*tiny_sde(), 40);
  expect_training_reduces_loss(*tiny_ode(), 15);
  OdeModelOptions o = tiny_ode()->options();
  o.exact_divergence = false;
  OdeModel hutch(o);
  hutch.to(torch::kDouble);
  expect_training_reduces_loss(hutch, 15);
}

TEST(GeneralModels, ConfigRoundTripsThroughTheFactory) {
  for (const std::string kind : {"sde", "ode"}) {
    const nlohmann::json c = model_config(kind, 2, {{"net", {{"width", 12}}}});
    EXPECT_EQ(c["net"]["width"], 12);
    const ModelPtr m = make_model(c);
    EXPECT_EQ(m->kind(), kind);
    EXPECT_EQ(m->dim(), 2);
    EXPECT_EQ(m->config(), c);
  }
  EXPECT_EQ(make_model(model_config("ode", 1, {{"steps", 7}}))->config()["steps"], 7);
}

TEST(GeneralModels, BadConfigurationsNameTheProblem) {
  EXPECT_THROW_WITH(model_config("gan", 1), InvalidArgument, "valid: sde, ode, flow, diffusion, score, vdm");
  EXPECT_THROW_WITH(model_config("sde", 1, {{"schedule", "vp"}}), InvalidArgument,
                    "unknown model configuration key 'schedule'");
  EXPECT_THROW_WITH(model_config("ode", 1, {{"net", {{"widht", 3}}}}), InvalidArgument, "'widht'");
  nlohmann::json c = model_config("sde", 1);
  c.erase("b1");
  EXPECT_THROW_WITH(make_model(c), InvalidArgument, "no 'b1'");
  c = model_config("ode", 1, {{"steps", "many"}});
  EXPECT_THROW_WITH(make_model(c), InvalidArgument, "'steps' has the wrong type");
  EXPECT_THROW_WITH(make_model(model_config("ode", 1, {{"solver", "dopri5"}})), InvalidArgument,
                    "unknown ode model solver 'dopri5'");
}

TEST(GeneralModels, SamplingFollowsEachModelsNature) {
  torch::NoGradGuard no_grad;
  auto sde = tiny_sde();
  auto ode = tiny_ode();
  const torch::Tensor x0 = sample_model_prior(*sde, 50);
  SamplerOptions so;
  so.solver = "euler-maruyama";
  so.steps = 10;
  const Solution s = generate(*sde, x0, so).check();
  EXPECT_EQ(s.x.sizes(), x0.sizes());
  EXPECT_EQ(s.nfe, 10);
  so.solver = "heun";
  EXPECT_THROW_WITH(generate(*sde, x0, so), InvalidArgument, "no probability-flow ODE");
  EXPECT_FALSE(sde->has_probability_flow());
  EXPECT_TRUE(ode->has_probability_flow());
  const Solution o = generate(*ode, x0, so).check();
  EXPECT_EQ(o.nfe, 20);  // heun: 2 per step
  so.diffusion = parse_diffusion("0.5");
  so.solver = "euler-maruyama";
  EXPECT_THROW_WITH(generate(*ode, x0, so), InvalidArgument, "deterministic");
  so.diffusion = {};
  so.solver = "dpm++2m";
  EXPECT_THROW_WITH(generate(*ode, x0, so), InvalidArgument, "free drift");
}

}  // namespace
}  // namespace sdegen
