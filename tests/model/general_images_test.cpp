// The general models (ode, sde) on images: a U-Net behind the network interface, with the
// derivatives a network without closed forms allows (Hutchinson's divergence, time derivatives
// by reverse mode twice), checked against brute-force Jacobians and finite differences.
#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/ode_model.h"
#include "sdegen/model/sde_model.h"
#include "sdegen/net/unet.h"
#include "support/support.h"

namespace sdegen {
namespace {
using test::max_abs_diff;

// 1x4x4 images -> 2x2 at 8 and 16 channels; no dropout, so that repeated calls agree.
nlohmann::json tiny_unet() {
  return to_json(UNetOptions(1, 4, 4)
                     .base_channels(8)
                     .channel_mult({1, 2})
                     .blocks_per_level(1)
                     .attention_resolutions({2})
                     .groups(4)
                     .dropout(0.0));
}

// Every weight redrawn, the zero-initialised output conv included, so that the network's output
// and its derivatives are nowhere trivially zero.
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.normal_(0.0, 0.2);
}

OdeModelOptions ode_options(int steps, const std::string& solver) {
  OdeModelOptions o;
  o.net = tiny_unet();
  o.exact_divergence = false;
  o.steps = steps;
  o.solver = solver;
  return o;
}

TEST(GeneralModelsOnImages, AFreshOdeUNetIsTheStandardNormal) {
  OdeModel m(ode_options(3, "rk4"));
  EXPECT_EQ(m.shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(m.dim(), 16);
  const torch::Tensor y = torch::randn({3, 1, 4, 4}, torch::kDouble);
  const FlowLikelihood l = m.likelihood(y);
  // The output conv starts at zero: F = 0, so x_0 = y and log p(y) = log N(y; 0, I).
  EXPECT_LT(max_abs_diff(l.x0, y), 1e-12);
  const torch::Tensor expected = -0.5 * y.pow(2).flatten(1).sum(1) - 8.0 * std::log(2.0 * M_PI);
  EXPECT_LT(max_abs_diff(l.log_prob, expected), 1e-10);
  EXPECT_THROW_WITH(m.likelihood(torch::randn({3, 16}, torch::kDouble)), InvalidArgument,
                    "ode model expects data of shape [batch, [1, 4, 4]], got [3, 16]");
}

// One Euler step from t = 1 to 0: x_0 = y - F(y, 1) and the integrated divergence is the
// estimate e^T (dF/dx) e at (y, 1), averaged over the probes. Redrawing the same probes and
// forming e^T J e from the full Jacobian checks how the image is flattened against the probes.
TEST(GeneralModelsOnImages, HutchinsonOnAUNetIsTheProbesQuadraticFormOfItsJacobian) {
  OdeModelOptions o = ode_options(1, "euler");
  o.probes = 3;
  OdeModel m(o);
  randomise(m);
  const int64_t n = 2, d = 16;
  const torch::Tensor y = torch::randn({n, 1, 4, 4}, torch::kDouble);
  torch::manual_seed(11);
  const FlowLikelihood l = m.likelihood(y);
  torch::manual_seed(11);
  const torch::Tensor probes = torch::randint(0, 2, {o.probes, n, d}, torch::kDouble) * 2.0 - 1.0;

  const torch::Tensor x = y.clone().requires_grad_(true);
  const torch::Tensor F = m.velocity(x, torch::ones({n}, torch::kDouble)).reshape({n, d});
  EXPECT_LT(max_abs_diff(l.x0, y - F.detach().view_as(y)), 1e-12);
  // Row k of every example's Jacobian at once: the examples do not interact.
  std::vector<torch::Tensor> rows;
  for (int64_t k = 0; k < d; ++k)
    rows.push_back(torch::autograd::grad({F.select(1, k).sum()}, {x}, {}, /*retain_graph=*/true)[0].reshape({n, d}));
  const torch::Tensor J = torch::stack(rows, 1);  // [n, d (output), d (input)]
  const torch::Tensor quadratic = torch::einsum("pni,nij,pnj->pn", {probes, J, probes}).mean(0);
  EXPECT_LT(max_abs_diff(l.integrated_divergence, quadratic), 1e-10);
  // The estimate is not the trace itself (so the check above is about these probes).
  EXPECT_GT(max_abs_diff(quadratic, J.diagonal(0, 1, 2).sum(1)), 1e-6);
}

TEST(GeneralModelsOnImages, AnOdeUNetTrainsAndIsConfiguredForHutchinsonInFloat32) {
  const nlohmann::json config = model_config("ode", 1, {{"net", tiny_unet()}, {"steps", 2}});
  EXPECT_EQ(config["exact_divergence"], false);
  EXPECT_EQ(config["dtype"], "float32");
  ModelPtr m = make_model(config);
  EXPECT_EQ(m->shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(m->parameters().front().scalar_type(), torch::kFloat);
  randomise(*m);
  const double loss = m->loss_and_gradient(torch::randn({4, 1, 4, 4}, torch::kFloat));
  EXPECT_TRUE(std::isfinite(loss));
  double grad_norm = 0.0;
  for (const auto& p : m->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    ASSERT_TRUE(p.grad().isfinite().all().item<bool>());
    grad_norm += p.grad().pow(2).sum().item<double>();
  }
  EXPECT_GT(grad_norm, 0.0);
  // A checkpoint's configuration rebuilds the same model.
  EXPECT_EQ(make_model(m->config())->config(), m->config());

  OdeModelOptions exact = ode_options(2, "euler");
  exact.exact_divergence = true;
  EXPECT_THROW_WITH(OdeModel{exact}, InvalidArgument,
                    "the exact divergence needs the MLP's closed-form Jacobian; a network of type unet");
}

std::shared_ptr<SdeModel> image_sde() {
  SdeModelOptions o;
  o.net = tiny_unet();
  auto m = std::make_shared<SdeModel>(o);
  randomise(*m);
  return m;
}

TEST(GeneralModelsOnImages, AnSdeUNetKeepsItsBoundaryConditionsForAnyWeights) {
  auto m = image_sde();
  const torch::Tensor y = torch::randn({3, 1, 4, 4}, torch::kDouble);
  const ProcessMoments start = m->moments(y, torch::zeros({3}, torch::kDouble));
  const ProcessMoments end = m->moments(y, torch::ones({3}, torch::kDouble));
  EXPECT_EQ(start.alpha.sizes(), y.sizes());
  EXPECT_LT(start.alpha.abs().max().item<double>(), 1e-15);
  EXPECT_LT(max_abs_diff(start.beta, torch::ones_like(y)), 1e-15);
  EXPECT_LT(max_abs_diff(end.alpha, y), 1e-15);
  const double b1 = std::exp(m->named_parameters()["log_b1"].item<double>());
  EXPECT_LT(max_abs_diff(end.beta, torch::full_like(y, b1)), 1e-12);
  // The network is not trivial: in between, alpha is not the straight line t y.
  const ProcessMoments mid = m->moments(y, torch::full({3}, 0.5, torch::kDouble));
  EXPECT_GT(max_abs_diff(mid.alpha, 0.5 * y), 1e-3);
}

// The U-Net has no closed-form tangents: d alpha/dt and d beta/dt come from reverse mode twice
// and must match central differences of alpha and beta.
TEST(GeneralModelsOnImages, AnSdeUNetsTimeDerivativesMatchFiniteDifferences) {
  auto m = image_sde();
  const torch::Tensor y = torch::randn({3, 1, 4, 4}, torch::kDouble);
  const torch::Tensor t = torch::tensor({0.2, 0.5, 0.8}, torch::kDouble);
  // The sinusoidal time features reach frequency 1000, so the differences' error (h^2 / 6 times
  // the third derivative) is 2e-4 at h = 1e-5 and falls a hundredfold per tenfold smaller h down
  // to h = 1e-7 (measured).
  const double h = 1e-7;
  const ProcessMoments at = m->moments(y, t), up = m->moments(y, t + h), down = m->moments(y, t - h);
  const torch::Tensor dalpha = (up.alpha - down.alpha) / (2 * h), dbeta = (up.beta - down.beta) / (2 * h);
  EXPECT_GT(at.dalpha.abs().max().item<double>(), 0.1);
  EXPECT_LT(max_abs_diff(at.dalpha, dalpha), 1e-6 * (1.0 + dalpha.abs().max().item<double>()));
  EXPECT_LT(max_abs_diff(at.dbeta, dbeta), 1e-6 * (1.0 + dbeta.abs().max().item<double>()));
}

TEST(GeneralModelsOnImages, AnSdeUNetTrainsReportsItsElboAndSamples) {
  auto m = image_sde();
  const torch::Tensor y = torch::randn({4, 1, 4, 4}, torch::kDouble);
  const double loss = m->loss_and_gradient(y);
  EXPECT_TRUE(std::isfinite(loss));
  for (const auto& item : m->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(item.value().grad().isfinite().all().item<bool>()) << item.key();
  }
  // The inference network's weights get a gradient through the time derivatives as well.
  EXPECT_GT(m->named_parameters()["inference.output_conv.weight"].grad().abs().max().item<double>(), 0.0);
  const ElboTerms terms = m->elbo(y, 2);
  EXPECT_EQ(terms.total().sizes(), torch::IntArrayRef({4}));
  EXPECT_TRUE(terms.total().isfinite().all().item<bool>());

  SamplerOptions s;
  s.solver = "euler-maruyama";
  s.steps = 5;
  const Solution sol = generate(*m, torch::randn({2, 1, 4, 4}, torch::kDouble), s);
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.x.sizes(), torch::IntArrayRef({2, 1, 4, 4}));
  EXPECT_THROW_WITH(m->elbo(torch::randn({4, 16}, torch::kDouble), 1), InvalidArgument,
                    "sde model expects data of shape [batch, [1, 4, 4]], got [4, 16]");
}

TEST(GeneralModelsOnImages, AConditionalNetworkIsRefused) {
  OdeModelOptions o = ode_options(2, "euler");
  o.net["num_classes"] = 2;
  EXPECT_THROW_WITH(OdeModel{o}, InvalidArgument, "ode model: class-conditional nets are not supported");
  SdeModelOptions s;
  s.net = o.net;
  EXPECT_THROW_WITH(SdeModel{s}, InvalidArgument, "sde model: class-conditional nets are not supported");
}

}  // namespace
}  // namespace sdegen
