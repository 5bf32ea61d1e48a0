// Evaluation of trained models in data units: exact cases, the standardisation's Jacobian, and
// a small trained flow end to end.
#include <cmath>
#include <fstream>

#include "sdegen/core/error.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/model/affine_model.h"
#include "support/support.h"

namespace sdegen {
namespace {

std::shared_ptr<AffineModel> flow_model(int64_t d) {
  auto m = std::make_shared<AffineModel>(affine_model_defaults("flow", d));
  m->to(torch::kDouble);
  return m;
}

Standardizer standardizer(std::vector<double> mean, std::vector<double> std) {
  return {torch::tensor(mean, torch::kDouble), torch::tensor(std, torch::kDouble)};
}

TEST(Evaluate, ZeroVelocityFlowIsTheStandardNormalInDataUnits) {
  // With v = 0 the flow leaves the prior N(0, I) unchanged, so in data units
  // log p(y) = log N(z; 0, I) - sum log std exactly, with either divergence.
  auto model = flow_model(2);
  {
    torch::NoGradGuard g;
    for (auto& p : model->parameters()) p.zero_();
  }
  const Standardizer st = standardizer({1.0, -2.0}, {2.0, 0.5});
  torch::manual_seed(0);
  const torch::Tensor y = torch::randn({50, 2}, torch::kDouble) * 2.0;
  const torch::Tensor z = st.transform(y);
  const torch::Tensor expected = -0.5 * z.pow(2).sum(1) - std::log(2 * M_PI) - std::log(2.0 * 0.5);
  for (bool exact : {true, false}) {
    LikelihoodOptions o;
    o.exact_divergence = exact;
    EXPECT_LT(test::max_abs_diff(model_log_likelihood(*model, st, y, o).log_prob, expected), 1e-8);
  }
}

TEST(Evaluate, StandardisationShiftsLogDensitiesBySumLogStd) {
  auto model = flow_model(2);
  const Standardizer unit = standardizer({0.0, 0.0}, {1.0, 1.0}), st = standardizer({0.5, 3.0}, {4.0, 0.25});
  torch::manual_seed(1);
  const torch::Tensor z = torch::randn({40, 2}, torch::kDouble);
  const torch::Tensor y = st.inverse(z);
  const double jac = std::log(4.0 * 0.25);
  EXPECT_LT(test::max_abs_diff(model_log_likelihood(*model, st, y).log_prob,
                               model_log_likelihood(*model, unit, z).log_prob - jac), 1e-8);
  torch::manual_seed(2);
  const ElboTerms a = model_elbo(*model, st, y, 4);
  torch::manual_seed(2);
  const ElboTerms b = model_elbo(*model, unit, z, 4);
  EXPECT_LT(test::max_abs_diff(a.reconstruction, b.reconstruction - jac), 1e-9);
  EXPECT_LT(test::max_abs_diff(a.drift, b.drift), 1e-9);
}

TEST(Evaluate, TrainedFlowEndToEnd) {
  torch::manual_seed(0);
  const EvalData data = make_eval_data("gmm1d", 400, 3);
  const torch::Tensor train = make_density("gmm1d")->sample(2000);
  const Standardizer st = fit_standardizer(train);
  auto model = flow_model(1);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    const torch::Tensor idx = torch::randint(0, train.size(0), {256}, torch::kLong);
    model->loss(st.transform(train.index_select(0, idx))).backward();
    opt.step();
  }
  EvalOptions o;
  o.quantization = 0.01;
  const EvalResult r = evaluate(*model, st, data, o);
  ASSERT_TRUE(r.log_likelihood && r.true_log_likelihood && r.metrics.w1 && r.metrics.mmd);
  // The ELBO bounds the likelihood (up to its Monte Carlo error); the model cannot beat the
  // truth by much on fresh points; samples land near the data.
  ASSERT_TRUE(r.elbo);
  EXPECT_LT(r.elbo->mean, r.log_likelihood->mean + 4 * r.elbo->se + 0.05);
  EXPECT_LT(r.log_likelihood->mean, r.true_log_likelihood->mean + 0.2);
  EXPECT_GT(r.log_likelihood->mean, r.true_log_likelihood->mean - 1.0);
  EXPECT_LT(r.metrics.w1->model, 5 * r.metrics.w1->reference + 0.2) << to_json(r).dump(1);
  EXPECT_NEAR(r.elbo->mean, r.reconstruction.mean - r.prior.mean - r.drift.mean, 1e-9);
  EXPECT_NEAR(*r.bits_per_dim, -(r.log_likelihood->mean + std::log(0.01)) / std::log(2.0), 1e-9);
  const nlohmann::json j = to_json(r);
  for (const char* key : {"log_likelihood", "elbo", "elbo_stderr", "true_log_likelihood", "w1", "sliced_w", "mmd",
                          "energy", "w1_reference", "mmd_reference"})
    EXPECT_TRUE(j.at(key).is_number() && std::isfinite(j.at(key).get<double>())) << key;
  for (const char* key : {"reconstruction", "prior", "drift"}) EXPECT_TRUE(j.at("elbo_terms").at(key).is_number());
  EXPECT_EQ(j.at("n").get<int64_t>(), 400);
}

TEST(Evaluate, CsvDataUsesEveryRowAndTwoDisjointHalvesForTheSampleMetrics) {
  const std::string path = test::temp_path("eval_halves.csv");
  {
    std::ofstream out(path);
    out << "a,b\n";
    for (int i = 0; i < 11; ++i) out << i << "," << -i << "\n";
  }
  const EvalData d = make_eval_data(path, 3, 0);  // n does not cut a table: every row counts
  EXPECT_EQ(d.x.size(0), 11);
  EXPECT_EQ(d.target.size(0), 5);
  EXPECT_EQ(d.reference.size(0), 5);
  EXPECT_EQ(d.density, nullptr);
  const torch::Tensor halves = torch::cat({d.target, d.reference}).select(1, 0);
  EXPECT_EQ(std::get<0>(at::_unique(halves)).numel(), 10);
  std::remove(path.c_str());
}

TEST(Evaluate, RefusesDataOfAnotherDimension) {
  auto model = flow_model(2);
  const EvalData d = make_eval_data("gmm1d", 10);
  const EvalOptions o;
  EXPECT_THROW_WITH(evaluate(*model, standardizer({0, 0}, {1, 1}), d, o), InvalidArgument, "model was trained on 2");
}

// A conditional model's likelihood and ELBO follow each row's condition. With every row's vector
// absent (the null condition) the guided flow's likelihood is the unconditional one of the
// established path (the SDE's drift, with the raw kernels), for each parameterisation that takes
// a condition; with the vectors present, a batch of rows gives what each row gives alone.
TEST(Evaluate, ConditionalLikelihoodAndElboFollowEachRowsCondition) {
  for (const std::string kind : {"flow", "diffusion", "score", "vdm"}) {
    SCOPED_TRACE(kind);
    torch::manual_seed(3);
    AffineModelOptions options = affine_model_defaults(kind, 2);
    options.net = to_json(MlpOptions(2).width(16).depth(2).condition_dim(3));
    auto model = std::make_shared<AffineModel>(options);
    model->to(torch::kDouble);
    {
      torch::NoGradGuard g;  // weights that read the condition (the output layer starts at zero)
      for (auto& p : model->parameters()) p.add_(0.3 * torch::randn_like(p));
    }
    model->eval();
    const Standardizer st = standardizer({1.0, -2.0}, {2.0, 0.5});
    const torch::Tensor y = torch::randn({6, 2}, torch::kDouble) + torch::tensor({1.0, -2.0}, torch::kDouble);
    Condition given, null;
    given.vector = torch::randn({6, 3}, torch::kDouble);
    null.vector = given.vector;
    null.present = torch::zeros({6}, torch::kDouble);
    LikelihoodOptions o;
    o.solver = "rk4";
    o.steps = 20;
    const torch::Tensor unconditional = model_log_likelihood(*model, st, y, o).log_prob;
    EXPECT_LT(test::max_abs_diff(model_log_likelihood(*model, st, y, o, null).log_prob, unconditional), 1e-9);
    const torch::Tensor conditional = model_log_likelihood(*model, st, y, o, given).log_prob;
    EXPECT_GT(test::max_abs_diff(conditional, unconditional), 1e-3);  // the condition is read
    for (int64_t i = 0; i < 6; ++i)
      EXPECT_LT(test::max_abs_diff(model_log_likelihood(*model, st, y.narrow(0, i, 1), o, given.slice(i, 1)).log_prob,
                                   conditional.narrow(0, i, 1)),
                1e-10)
          << "row " << i;
    // The ELBO, on the same draws: the null condition gives the unconditional terms.
    torch::manual_seed(9);
    const ElboTerms a = model_elbo(*model, st, y, 4);
    torch::manual_seed(9);
    const ElboTerms b = model_elbo(*model, st, y, 4, 4096, null);
    EXPECT_LT(test::max_abs_diff(a.total(), b.total()), 1e-9);
    torch::manual_seed(9);
    EXPECT_GT(test::max_abs_diff(model_elbo(*model, st, y, 4, 4096, given).total(), a.total()), 1e-3);
  }
  EXPECT_THROW_WITH(model_log_likelihood(*flow_model(2), standardizer({0.0, 0.0}, {1.0, 1.0}),
                                         torch::zeros({2, 2}, torch::kDouble), {},
                                         Condition(torch::zeros({2}, torch::kLong))),
                    InvalidArgument, "this 'flow' model is unconditional");
}

}  // namespace
}  // namespace sdegen
