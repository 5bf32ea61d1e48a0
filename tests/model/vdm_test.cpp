// vdm: the loglinear schedule's endpoints (and optionally its shape) are parameters trained by the
// ELBO. Autograd reaches them through every ELBO term (checked against finite differences with
// fixed noise), training moves them, the sampling schedule and a checkpoint see the learned values,
// and the configuration records them and refuses bad ones by name.
#include <filesystem>
#include <functional>
#include <map>

#include "sdegen/core/error.h"
#include "sdegen/model/factory.h"
#include "sdegen/process/loglinear.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

std::shared_ptr<AffineModel> tiny_vdm(const nlohmann::json& overrides = nlohmann::json::object()) {
  nlohmann::json o = {{"net", {{"width", 16}, {"depth", 2}}}};
  o.update(overrides);
  auto m = std::dynamic_pointer_cast<AffineModel>(make_model(model_config("vdm", 2, o)));
  EXPECT_TRUE(m);
  return m;
}

torch::Tensor parameter(GenerativeModel& m, const std::string& name) {
  const auto params = m.named_parameters();
  EXPECT_TRUE(params.contains(name)) << name;
  return params[name];
}

torch::Tensor data() {
  torch::manual_seed(1);
  return torch::randn({24, 2}) * 0.7 + 0.3;
}

TEST(Vdm, EndpointsAreParametersAndTheConfigRecordsThem) {
  const nlohmann::json c = model_config("vdm", 2);
  EXPECT_EQ(c["learn_endpoints"], true);
  EXPECT_EQ(c["lambda_min"], -10.0);
  EXPECT_EQ(c["lambda_max"], 12.0);
  EXPECT_EQ(c["schedule_knots"], 1);
  auto m = tiny_vdm();
  EXPECT_DOUBLE_EQ(parameter(*m, "lambda_0").item<double>(), -10.0);
  EXPECT_DOUBLE_EQ(parameter(*m, "lambda_1").item<double>(), 12.0);
  EXPECT_FALSE(m->named_parameters().contains("schedule_logits"));
  EXPECT_EQ(m->config(), make_model(m->config())->config());

  auto shaped = tiny_vdm({{"schedule_knots", 4}, {"lambda_min", -6.0}, {"lambda_max", 8.0}});
  EXPECT_EQ(parameter(*shaped, "schedule_logits").numel(), 4);
  EXPECT_EQ(shaped->config()["schedule_knots"], 4);
  EXPECT_NEAR(shaped->schedule().lambda(0.0), -6.0, 1e-12);
  EXPECT_NEAR(shaped->schedule().lambda(1.0), 8.0, 1e-12);

  // Fixed endpoints: the plain loglinear schedule, nothing extra to learn.
  auto fixed = tiny_vdm({{"learn_endpoints", false}});
  EXPECT_FALSE(fixed->named_parameters().contains("lambda_0"));
  EXPECT_FALSE(fixed->learns_schedule());
  // Other models keep their fixed schedules and have no such keys.
  EXPECT_FALSE(model_config("diffusion", 2).contains("learn_endpoints"));
  const nlohmann::json d = model_config("diffusion", 2, {{"schedule", "loglinear"}});
  EXPECT_NEAR(std::dynamic_pointer_cast<AffineModel>(make_model(d))->schedule().lambda(1.0), 12.0, 1e-12);
}

TEST(Vdm, BadOptionsAreRefusedByName) {
  EXPECT_THROW_WITH(tiny_vdm({{"lambda_min", 5.0}, {"lambda_max", 5.0}}), InvalidArgument,
                    "lambda_min < lambda_max, got 5 and 5");
  EXPECT_THROW_WITH(tiny_vdm({{"lambda_min", 5.0}, {"lambda_max", -5.0}, {"learn_endpoints", false}}),
                    InvalidArgument, "lambda_min < lambda_max");
  EXPECT_THROW_WITH(tiny_vdm({{"schedule_knots", 0}}), InvalidArgument, "schedule_knots must be >= 1");
  EXPECT_THROW_WITH(tiny_vdm({{"schedule_knots", 2.5}}), InvalidArgument, "'schedule_knots' has the wrong type");
  EXPECT_THROW_WITH(tiny_vdm({{"learn_endpoints", 1}}), InvalidArgument, "'learn_endpoints' has the wrong type");
  EXPECT_THROW_WITH(tiny_vdm({{"lambda_max", "high"}}), InvalidArgument, "'lambda_max' has the wrong type");
  EXPECT_THROW_WITH(tiny_vdm({{"lambda_max", true}}), InvalidArgument, "'lambda_max' has the wrong type");
  EXPECT_THROW_WITH(model_config("vdm", 2, {{"lambda0", -5.0}}), InvalidArgument,
                    "unknown model configuration key 'lambda0'");
  EXPECT_THROW_WITH(model_config("diffusion", 2, {{"learn_endpoints", true}}), InvalidArgument,
                    "unknown model configuration key 'learn_endpoints'");
  EXPECT_THROW_WITH(tiny_vdm({{"schedule", "vp"}}), InvalidArgument, "a learned schedule is loglinear");
  EXPECT_THROW_WITH(tiny_vdm({{"weighting", "native"}}), InvalidArgument, "weighting must be 'elbo'");
}

// Central differences of f in each entry of param, with f recomputed under a fixed seed.
std::vector<double> finite_differences(const torch::Tensor& param, const std::function<double()>& f,
                                       double h = 1e-5) {
  torch::NoGradGuard no_grad;
  std::vector<double> out;
  const int64_t n = param.numel();
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor entry = param.dim() == 0 ? param : param.view({-1})[i];
    entry.add_(h);
    const double up = f();
    entry.sub_(2 * h);
    const double down = f();
    entry.add_(h);
    out.push_back((up - down) / (2 * h));
  }
  return out;
}

// Gradients of each ELBO term (and of the ELBO and the training loss) in l0, l1 and the shape
// logits against finite differences with the same times and noise.
TEST(Vdm, ElboGradientMatchesFiniteDifferencesThroughEveryTerm) {
  auto m = tiny_vdm({{"schedule_knots", 3}, {"lambda_min", -4.0}, {"lambda_max", 6.0}});
  {
    torch::NoGradGuard no_grad;
    parameter(*m, "schedule_logits").copy_(torch::tensor({0.4, -0.3, 0.2}, torch::kDouble));
  }
  const torch::Tensor y = data();
  const std::vector<std::string> names = {"lambda_0", "lambda_1", "schedule_logits"};
  using Term = std::function<torch::Tensor()>;
  const auto elbo = [&] {
    torch::manual_seed(7);
    return m->elbo(y, 2);
  };
  const std::vector<std::pair<std::string, Term>> terms = {
      {"reconstruction", [&] { return elbo().reconstruction.mean(); }},
      {"prior", [&] { return elbo().prior.mean(); }},
      {"drift", [&] { return elbo().drift.mean(); }},
      {"elbo", [&] { return elbo().total().mean(); }},
      {"loss", [&] {
         torch::manual_seed(8);
         return m->loss(y);
       }}};
  std::map<std::string, std::vector<double>> grad_norm;  // term -> |gradient| per parameter
  for (const auto& entry : terms) {
    const auto& term = entry.first;
    const auto& f = entry.second;  // a named reference: C++17 lambdas cannot capture a structured binding
    std::vector<torch::Tensor> params;
    for (const auto& name : names) params.push_back(parameter(*m, name));
    const auto grads = torch::autograd::grad({f()}, params, {}, false, false, /*allow_unused=*/true);
    for (size_t p = 0; p < names.size(); ++p) {
      const std::vector<double> fd = finite_differences(params[p], [&] { return f().item<double>(); });
      const torch::Tensor g = grads[p].defined() ? grads[p].reshape({-1}) : torch::zeros({params[p].numel()});
      for (size_t i = 0; i < fd.size(); ++i)
        EXPECT_NEAR(g[i].item<double>(), fd[i], 1e-6 * (1.0 + std::abs(fd[i]))) << term << " d/d " << names[p] << i;
      grad_norm[term].push_back(g.abs().max().item<double>());
    }
  }
  // Which term depends on which parameter: reconstruction on l1 (b(1)/a(1) = exp(-l1/2)), prior
  // on l0 (a(0)^2 = sigmoid(l0)), the drift term on all (x_t and lambda').
  EXPECT_LT(grad_norm["reconstruction"][0], 1e-10);  // d lambda(1) / d l0 = 1 - m(1), zero up to round-off
  EXPECT_GT(grad_norm["reconstruction"][1], 1e-8);
  EXPECT_GT(grad_norm["prior"][0], 1e-8);
  EXPECT_LT(grad_norm["prior"][1], 1e-10);
  for (size_t p = 0; p < names.size(); ++p) EXPECT_GT(grad_norm["drift"][p], 1e-6) << names[p];
  for (size_t p = 0; p < names.size(); ++p) EXPECT_GT(grad_norm["loss"][p], 1e-6) << names[p];
}

// The training loss is the negative ELBO: the same terms, with antithetic times.
TEST(Vdm, LossIsTheNegativeElbo) {
  auto m = tiny_vdm();
  const torch::Tensor y = data();
  torch::manual_seed(3);
  const double loss = m->loss(y).item<double>();
  const ElboTerms ends = m->end_terms(y);
  torch::manual_seed(3);
  const torch::Tensor u = torch::rand({1});
  const torch::Tensor t = torch::remainder(u + torch::arange(24) / 24.0, 1.0);
  const torch::Tensor eps = torch::randn_like(y);
  const double drift = m->drift_terms(y, t, eps).elbo_integrand.mean().item<double>();
  EXPECT_NEAR(loss, drift - ends.reconstruction.mean().item<double>() + ends.prior.mean().item<double>(), 1e-12);
  // The end terms in closed form: b(1)/a(1) = exp(-l1/2), a(0)^2 = sigmoid(l0).
  const double delta = 0.01, d = 2, r2 = std::exp(-12.0);
  const torch::Tensor expected_rec =
      torch::full({24}, -0.5 * d * std::log(2 * M_PI * delta * delta) - d * r2 / (2 * delta * delta));
  EXPECT_LT(max_abs_diff(ends.reconstruction, expected_rec), 1e-9);
  const double a2 = 1.0 / (1.0 + std::exp(10.0)), b2 = 1.0 - a2;
  const torch::Tensor expected_prior = 0.5 * (a2 * (y * y).sum(1) + d * (b2 - 1.0 - std::log(b2)));
  EXPECT_LT(max_abs_diff(ends.prior, expected_prior), 1e-13);
  // Their gradients in closed form, as a hand-derived kernel would compute them:
  //   d rec / d l1 = d exp(-l1) / (2 delta^2),  d prior / d l0 = 1/2 sum_j [a0^2 b0^2 (y_j^2 - 1) + a0^2].
  const torch::Tensor l0 = parameter(*m, "lambda_0"), l1 = parameter(*m, "lambda_1");
  const auto g_rec = torch::autograd::grad({ends.reconstruction.mean()}, {l1}, {}, true)[0].item<double>();
  EXPECT_NEAR(g_rec, d * r2 / (2 * delta * delta), 1e-12);
  const auto g_prior = torch::autograd::grad({ends.prior.mean()}, {l0})[0].item<double>();
  const double expected_g_prior = (0.5 * (a2 * b2 * (y * y - 1.0) + a2).sum(1)).mean().item<double>();
  EXPECT_NEAR(g_prior, expected_g_prior, 1e-12 * std::abs(expected_g_prior));
}

TEST(Vdm, TrainingMovesTheEndpointsAndTheSamplingScheduleFollows) {
  auto m = tiny_vdm({{"schedule_knots", 3}});
  const torch::Tensor y = data();
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(2e-2));
  for (int i = 0; i < 15; ++i) {
    opt.zero_grad();
    m->loss(y).backward();
    opt.step();
  }
  const double l0 = parameter(*m, "lambda_0").item<double>(), l1 = parameter(*m, "lambda_1").item<double>();
  EXPECT_GT(std::abs(l0 + 10.0), 0.05) << l0;
  EXPECT_GT(std::abs(l1 - 12.0), 0.05) << l1;
  EXPECT_GT(parameter(*m, "schedule_logits").abs().max().item<double>(), 0.05);
  // The schedule the sampler, grids and likelihood use is the learned one.
  for (const AffineSchedule* s : {&m->schedule(), &m->field()->schedule()}) {
    EXPECT_NEAR(s->lambda(0.0), l0, 1e-12);
    EXPECT_NEAR(s->lambda(1.0), l1, 1e-12);
  }
  const auto sde = std::dynamic_pointer_cast<const MarginalSde>(m->sde(parse_diffusion("reverse")));
  ASSERT_TRUE(sde);
  EXPECT_EQ(&sde->field().schedule(), &m->schedule());
}

TEST(Vdm, CheckpointReproducesTheScheduleAndTheElbo) {
  namespace fs = std::filesystem;
  const std::string dir = test::temp_path("vdm_checkpoint");
  fs::remove_all(dir);
  auto m = tiny_vdm({{"schedule_knots", 3}});
  TrainSetup setup;
  setup.progress = nullptr;
  train(m, data(), TrainOptions().steps(20).batch(12).lr(2e-2).ema_decay(0.9), dir, setup);
  const auto elbo = [&](GenerativeModel& model) {
    torch::manual_seed(11);
    torch::NoGradGuard no_grad;
    return model.elbo(data(), 3).total();
  };
  const auto knots = [](const AffineModel& model) {
    std::vector<double> v;
    for (int k = 0; k <= 3; ++k) v.push_back(model.schedule().lambda(k / 3.0));
    return v;
  };
  ASSERT_GT(std::abs(m->schedule().lambda(1.0) - 12.0), 1e-3);  // training moved it
  const nlohmann::json config = load_checkpoint_config(dir).at("model");
  EXPECT_EQ(config, m->config());
  // The last iterate: the same schedule and, with the same noise, the same ELBO.
  auto last = std::dynamic_pointer_cast<AffineModel>(make_model(config));
  EXPECT_GT(max_abs_diff(elbo(*last), elbo(*m)), 1e-6);  // fresh weights differ
  load_weights(dir, *last, Weights::kLast);
  const std::vector<double> mine = knots(*m), loaded = knots(*last);
  for (size_t k = 0; k < mine.size(); ++k) EXPECT_DOUBLE_EQ(loaded[k], mine[k]) << k;
  EXPECT_LT(max_abs_diff(elbo(*last), elbo(*m)), 1e-12);
  // The average: the schedule (and its sampling field) read the averaged parameters.
  auto averaged = std::dynamic_pointer_cast<AffineModel>(make_model(config));
  load_weights(dir, *averaged, Weights::kAverage);
  const double l1 = parameter(*averaged, "lambda_1").item<double>();
  EXPECT_NE(l1, m->schedule().lambda(1.0));
  EXPECT_NEAR(averaged->field()->schedule().lambda(1.0), l1, 1e-12);
  EXPECT_TRUE(torch::isfinite(elbo(*averaged)).all().item<bool>());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sdegen
