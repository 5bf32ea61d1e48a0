// The likelihood on raw buffers (the network's Jacobian tangents for the divergence, dopri5 on raw
// buffers) against the tensor path with autograd's divergence, which stays the reference; and
// per-point trust: a point whose solve blows up is counted and marked, not averaged in.
#include <cmath>
#include <iostream>
#include <limits>

#include "sdegen/core/error.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/ode_model.h"
#include "support/support.h"

namespace sdegen {
namespace {

struct ModelCase {
  std::string name, kind;
  nlohmann::json overrides;
  int64_t dim;
};

std::vector<ModelCase> model_cases() {
  std::vector<ModelCase> cases;
  for (const int64_t d : {1, 2}) {
    const std::string D = std::to_string(d) + "d";
    cases.push_back({"flow_" + D, "flow", nlohmann::json::object(), d});
    cases.push_back({"diffusion_noise_" + D, "diffusion", nlohmann::json::object(), d});
    cases.push_back({"vdm_" + D, "vdm", nlohmann::json::object(), d});
    cases.push_back({"ode_" + D, "ode", nlohmann::json::object(), d});
  }
  // Every other prediction's conversion, and EDM's preconditioning, in 2-D.
  cases.push_back({"diffusion_data_2d", "diffusion", {{"prediction", "data"}}, 2});
  cases.push_back({"diffusion_v_2d", "diffusion", {{"prediction", "v"}}, 2});
  cases.push_back({"score_2d", "score", nlohmann::json::object(), 2});
  cases.push_back({"edm_2d", "diffusion", {{"schedule", "edm"}}, 2});
  return cases;
}

ModelPtr tiny_model(const ModelCase& c) {
  nlohmann::json o = c.overrides;
  o["net"] = {{"width", 8}, {"activation", "silu"}};
  torch::manual_seed(11);
  return make_model(model_config(c.kind, c.dim, o));
}

Standardizer unit(int64_t d) {
  return {torch::zeros({d}, torch::kDouble), torch::ones({d}, torch::kDouble)};
}

// div f at (t, x) by autograd, one backward pass per dimension.
torch::Tensor autograd_divergence(const GenerativeSde& sde, const torch::Tensor& x, double t) {
  torch::AutoGradMode on(true);
  const torch::Tensor xi = x.detach().requires_grad_(true);
  const torch::Tensor v = sde.drift(xi, t);
  torch::Tensor div = torch::zeros({x.size(0)}, x.options());
  for (int64_t j = 0; j < x.size(1); ++j)
    div = div + torch::autograd::grad({v.select(1, j).sum()}, {xi}, {}, true)[0].select(1, j);
  return div.detach();
}

class RawLikelihood : public ::testing::TestWithParam<ModelCase> {};

// The probability flow's velocity and divergence on raw buffers (the Jacobian tangents, through
// the prediction's conversion) equal the tensor drift and autograd's trace of its Jacobian.
TEST_P(RawLikelihood, DivergenceFromTangentsIsAutograds) {
  const ModelPtr model = tiny_model(GetParam());
  const auto sde = model->sde(DiffusionSpec{});
  const RawDivergenceField raw = sde->raw_drift_divergence();
  ASSERT_TRUE(raw);
  const int64_t n = 6, d = GetParam().dim;
  torch::manual_seed(12);
  const torch::Tensor x = torch::randn({n, d}, torch::kDouble);
  for (const double t : {0.1, 0.5, 0.9}) {
    torch::Tensor v = torch::empty({n, d}, torch::kDouble), div = torch::empty({n}, torch::kDouble);
    raw(t, x.data_ptr<double>(), n, v.data_ptr<double>(), div.data_ptr<double>());
    const torch::Tensor v_ref = sde->drift(x, t).detach(), div_ref = autograd_divergence(*sde, x, t);
    EXPECT_LT(test::max_abs_diff(v, v_ref), 1e-12 * (1 + v_ref.abs().max().item<double>())) << "t = " << t;
    EXPECT_LT(test::max_abs_diff(div, div_ref), 1e-10 * (1 + div_ref.abs().max().item<double>())) << "t = " << t;
  }
}

// log_likelihood on the raw path equals the reference tensor path: same steps, log_prob to 1e-9.
TEST_P(RawLikelihood, EqualsTheTensorPath) {
  const ModelPtr model = tiny_model(GetParam());
  const int64_t d = GetParam().dim;
  torch::manual_seed(13);
  const torch::Tensor y = torch::randn({9, d}, torch::kDouble);
  LikelihoodOptions o;
  const LikelihoodResult raw = model_log_likelihood(*model, unit(d), y, o);
  o.reference = true;
  const LikelihoodResult ref = model_log_likelihood(*model, unit(d), y, o);
  EXPECT_TRUE(raw.raw);
  EXPECT_FALSE(ref.raw);
  EXPECT_EQ(raw.nfe, ref.nfe);
  EXPECT_EQ(raw.invalid, 0);
  EXPECT_TRUE(raw.valid.all().item<bool>());
  const double scale = ref.log_prob.abs().max().item<double>(), diff = test::max_abs_diff(raw.log_prob, ref.log_prob);
  std::cout << "[ raw likelihood ] " << GetParam().name << ": nfe " << raw.nfe << ", max |log_prob difference| "
            << diff << " of max |log_prob| " << scale << "\n";
  EXPECT_LT(diff, 1e-9 * scale);
  EXPECT_LT(test::max_abs_diff(raw.x_prior, ref.x_prior), 1e-9 * (1 + ref.x_prior.abs().max().item<double>()));
}

INSTANTIATE_TEST_SUITE_P(Models, RawLikelihood, ::testing::ValuesIn(model_cases()),
                         [](const auto& info) { return info.param.name; });

// A fixed-step solver runs on raw buffers too (solve_ode_raw), with the same states.
TEST(RawLikelihoodPaths, FixedStepSolverEqualsTheTensorPath) {
  const ModelPtr model = tiny_model({"flow", "flow", nlohmann::json::object(), 2});
  torch::manual_seed(14);
  const torch::Tensor y = torch::randn({5, 2}, torch::kDouble);
  LikelihoodOptions o;
  o.solver = "rk4";
  o.steps = 20;
  const LikelihoodResult raw = log_likelihood(*model->field(), y, o);
  o.reference = true;
  const LikelihoodResult ref = log_likelihood(*model->field(), y, o);
  EXPECT_TRUE(raw.raw);
  EXPECT_EQ(raw.nfe, 80);
  EXPECT_EQ(ref.nfe, 80);
  EXPECT_LT(test::max_abs_diff(raw.log_prob, ref.log_prob), 1e-12);
}

// The ode model's own likelihood (its ELBO and validation) runs on raw buffers without
// gradients: the same values as the tensor solve that training differentiates.
TEST(RawLikelihoodPaths, OdeModelLikelihoodWithoutGradients) {
  const ModelPtr model = tiny_model({"ode", "ode", {{"steps", 12}}, 2});
  auto* ode = dynamic_cast<OdeModel*>(model.get());
  ASSERT_NE(ode, nullptr);
  torch::manual_seed(16);
  const torch::Tensor y = torch::randn({6, 2}, torch::kDouble);
  const FlowLikelihood with_grad = ode->likelihood(y);
  ASSERT_TRUE(with_grad.log_prob.requires_grad());
  torch::NoGradGuard no_grad;
  const FlowLikelihood raw = ode->likelihood(y);
  EXPECT_FALSE(raw.log_prob.requires_grad());
  EXPECT_LT(test::max_abs_diff(raw.log_prob, with_grad.log_prob.detach()), 1e-12);
  EXPECT_LT(test::max_abs_diff(raw.x0, with_grad.x0.detach()), 1e-12);
}

// The raw path needs the exact divergence, CPU float64 points and a field that has raw buffers.
TEST(RawLikelihoodPaths, TensorPathWhereTheRawOneDoesNotApply) {
  const ModelPtr model = tiny_model({"flow", "flow", nlohmann::json::object(), 2});
  torch::manual_seed(15);
  const torch::Tensor y = torch::randn({5, 2}, torch::kDouble);
  LikelihoodOptions hutchinson;
  hutchinson.exact_divergence = false;
  EXPECT_FALSE(log_likelihood(*model->field(), y, hutchinson).raw);
  const DensityPtr data = make_density("gmm2d");
  const GmmOracle oracle(*data->mixture(), make_schedule("linear"));
  EXPECT_FALSE(log_likelihood(oracle, y).raw);
  model->to(torch::kFloat);
  EXPECT_FALSE(log_likelihood(*model->field(), y.to(torch::kFloat)).raw);
}

// dx/dt = x^2 from x(1) = x1 back to t = 0: x(t) = 1 / (c + 1 - t) with c = 1 / x1, which blows up
// inside (0, 1) for x1 < -1. Otherwise log p = log N(x(0)) - int_0^1 2 x dt
// = log N(1 / (c + 1)) - 2 log|(c + 1) / c|.
VectorField square_field() {
  return [](double, const torch::Tensor& x) { return x * x; };
}
RawDivergenceField square_raw() {
  return [](double, const double* x, int64_t n, double* v, double* div) {
    for (int64_t i = 0; i < n; ++i) v[i] = x[i] * x[i], div[i] = 2 * x[i];
  };
}
double square_log_prob(double x1) {
  const double c = 1.0 / x1, x0 = 1.0 / (c + 1.0);
  return -0.5 * x0 * x0 - 0.5 * std::log(2 * M_PI) - 2.0 * std::log(std::abs((c + 1.0) / c));
}

TEST(LikelihoodTrust, APointThatBlowsUpIsCountedAndMarked) {
  const torch::Tensor x = torch::tensor({{0.5}, {-3.0}, {-0.3}}, torch::kDouble);
  LikelihoodOptions o;
  o.adaptive.rtol = o.adaptive.atol = 1e-9;
  const LikelihoodResult r = log_likelihood(square_field(), x, 1.0, o, square_raw());
  ASSERT_TRUE(r.raw);
  EXPECT_EQ(r.invalid, 1);
  EXPECT_TRUE(r.valid[0].item<bool>());
  EXPECT_FALSE(r.valid[1].item<bool>());
  EXPECT_TRUE(r.valid[2].item<bool>());
  EXPECT_TRUE(std::isnan(r.log_prob[1].item<double>()));
  EXPECT_TRUE(std::isnan(r.prior_log_prob[1].item<double>()));
  EXPECT_TRUE(std::isnan(r.x_prior[1][0].item<double>()));
  EXPECT_NEAR(r.log_prob[0].item<double>(), square_log_prob(0.5), 1e-6);
  EXPECT_NEAR(r.log_prob[2].item<double>(), square_log_prob(-0.3), 1e-6);
  const torch::Tensor kept = r.valid_log_prob();
  ASSERT_EQ(kept.size(0), 2);
  EXPECT_EQ(kept[1].item<double>(), r.log_prob[2].item<double>());
  // The reference path, and the raw path told not to set points aside, fail the whole solve.
  LikelihoodOptions strict = o;
  strict.isolate_failures = false;
  EXPECT_THROW_WITH(log_likelihood(square_field(), x, 1.0, strict, square_raw()), NumericError,
                    "step size underflow");
  LikelihoodOptions reference = o;
  reference.reference = true;
  EXPECT_THROW_WITH(log_likelihood(square_field(), x, 1.0, reference, square_raw()), NumericError,
                    "step size underflow");
}

// With every point blowing up there is nothing to report: the solve fails as a whole.
TEST(LikelihoodTrust, EveryPointBlowingUpFailsTheSolve) {
  const torch::Tensor x = torch::tensor({{-3.0}, {-2.0}}, torch::kDouble);
  EXPECT_THROW_WITH(log_likelihood(square_field(), x, 1.0, {}, square_raw()), NumericError, "step size underflow");
}

// A finite solve whose log_prob overflows (a prior state near the largest double) is marked too.
TEST(LikelihoodTrust, ANonFiniteLogProbIsMarked) {
  const VectorField zero = [](double, const torch::Tensor& x) { return 0.0 * x; };  // autograd needs a graph
  const torch::Tensor x = torch::tensor({{1.0}, {1e200}}, torch::kDouble);
  for (const bool reference : {false, true}) {
    LikelihoodOptions o;
    o.reference = reference;
    const LikelihoodResult r = log_likelihood(zero, x, 1.0, o, [](double, const double*, int64_t n, double* v, double* div) {
      std::fill(v, v + n, 0.0);
      std::fill(div, div + n, 0.0);
    });
    EXPECT_EQ(r.raw, !reference);
    EXPECT_EQ(r.invalid, 1);
    EXPECT_TRUE(r.valid[0].item<bool>());
    EXPECT_FALSE(r.valid[1].item<bool>());
    EXPECT_NEAR(r.log_prob[0].item<double>(), -0.5 - 0.5 * std::log(2 * M_PI), 1e-12);
    EXPECT_TRUE(std::isnan(r.log_prob[1].item<double>()));
  }
}

}  // namespace
}  // namespace sdegen
