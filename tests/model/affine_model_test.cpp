// The affine specialisations: the training loss falls on a tiny model, the sampling field is the
// network's output converted, and the ELBO's terms are finite and consistent.
#include "sdegen/core/error.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "support/support.h"

namespace sdegen {
namespace {

std::shared_ptr<AffineModel> tiny(const std::string& kind) {
  AffineModelOptions o = affine_model_defaults(kind, 2);
  o.net = to_json(MlpOptions(2).width(16).depth(2));
  auto m = std::make_shared<AffineModel>(o);
  m->to(torch::kDouble);
  return m;
}

class EveryAffineKind : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryAffineKind, AFewStepsReduceTheLoss) {
  torch::manual_seed(3);
  auto m = tiny(GetParam());
  const torch::Tensor y = torch::randn({256, 2}) * 0.5 + 1.0;
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(1e-2));
  auto eval_loss = [&] {
    torch::manual_seed(99);  // the same t and eps each time: a fair comparison
    return m->loss(y).item<double>();
  };
  const double before = eval_loss();
  for (int i = 0; i < 60; ++i) {
    opt.zero_grad();
    m->loss(y).backward();
    opt.step();
  }
  EXPECT_LT(eval_loss(), before) << GetParam();
}

TEST_P(EveryAffineKind, FieldIsTheConvertedNetworkOutput) {
  auto m = tiny(GetParam());
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({5, 2});
  const double t = 0.4;
  const torch::Tensor tt = torch::full({5}, t);
  const torch::Tensor raw = m->predict_native(x, tt);
  const ScheduleCoefficients c = m->schedule().coefficients(tt).like(x);
  const Prediction native = prediction_from_name(m->config()["prediction"].get<std::string>());
  for (Prediction p : {Prediction::Data, Prediction::Noise, Prediction::Score, Prediction::Velocity}) {
    EXPECT_LT(test::max_abs_diff(m->field()->predict(x, t, p), convert(raw, native, p, x, c)), 1e-12);
  }
}

TEST_P(EveryAffineKind, ElboTermsAreFinite) {
  auto m = tiny(GetParam());
  torch::NoGradGuard no_grad;
  const ElboTerms e = m->elbo(torch::randn({32, 2}), 3);
  EXPECT_TRUE(torch::isfinite(e.total()).all().item<bool>());
  EXPECT_TRUE((e.prior >= 0).all().item<bool>());
  EXPECT_TRUE((e.drift >= 0).all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryAffineKind, ::testing::Values("flow", "diffusion", "score", "vdm"));

TEST(AffineModel, RefusesWrongDimensionAndUnknownKind) {
  auto m = tiny("flow");
  EXPECT_THROW_WITH(m->loss(torch::randn({4, 3})), InvalidArgument, "[batch, 2]");
  EXPECT_THROW_WITH(affine_model_defaults("gan", 2), InvalidArgument, "valid: flow, diffusion, score, vdm");
}

}  // namespace
}  // namespace sdegen

namespace sdegen {
namespace {

TEST(ModelConfig, DefaultNetsStartAtXInitScale14ExceptOnUnpreconditionedWideSchedules) {
  auto scale = [](const nlohmann::json& c) { return mlp_options_from_json(c.at("net")).x_init_scale(); };
  for (const auto& kind : model_names())
    EXPECT_EQ(scale(model_config(kind, 1)), kind == "score" ? 1.0 : 14.0) << kind;  // score is ve
  EXPECT_EQ(scale(model_config("flow", 1, {{"schedule", "ve"}})), 1.0);
  EXPECT_EQ(scale(model_config("flow", 1, {{"schedule", "vp"}})), 14.0);
  EXPECT_EQ(scale(model_config("diffusion", 1, {{"schedule", "edm"}})), 14.0);  // preconditioned
  EXPECT_EQ(scale(model_config("diffusion", 1, {{"schedule", "edm"}, {"precondition", false},
                                                {"prediction", "noise"}})),
            1.0);
  EXPECT_EQ(scale(model_config("score", 1, {{"net", {{"x_init_scale", 3.0}}}})), 3.0);  // asked for
  EXPECT_EQ(scale(model_config("score", 1, {{"prediction", "data"}, {"precondition", true}})), 14.0);
  // The configs build, and the scale-1 ones are written as before the option existed.
  EXPECT_FALSE(model_config("score", 1)["net"].contains("x_init_scale"));
  for (const auto& kind : model_names()) EXPECT_NO_THROW(make_model(model_config(kind, 1))) << kind;
}

TEST(EdmPreconditioning, UntrainedDenoiserIsThePosteriorMeanOfGaussianData) {
  // With the net's output at zero, y_hat = c_skip z = s_d^2 / (s_d^2 + sigma^2) z: exactly
  // E[y | z] for y ~ N(0, s_d^2) and z = y + sigma eps.
  nlohmann::json c = model_config("diffusion", 2, {{"schedule", "edm"}, {"net", {{"zero_init_output", true}}}});
  EXPECT_EQ(c["precondition"], true);
  EXPECT_EQ(c["prediction"], "data");
  EXPECT_EQ(c["weighting"], "edm");
  EXPECT_EQ(c["time_sampling"], "lognormal");
  c["sigma_data"] = 0.7;
  auto model = std::dynamic_pointer_cast<AffineModel>(make_model(c));
  ASSERT_TRUE(model);
  const torch::Tensor x = torch::randn({6, 2}) * 3.0;
  const torch::Tensor t = torch::rand({6});
  const torch::Tensor sigma = (model->schedule().b(t) / model->schedule().a(t)).unsqueeze(1);
  const torch::Tensor z = x / model->schedule().a(t).unsqueeze(1);
  const torch::Tensor expected = 0.49 / (0.49 + sigma * sigma) * z;
  EXPECT_LT(test::max_abs_diff(model->predict_native(x, t), expected), 1e-12);
  // The sampling field sees the same preconditioned prediction.
  EXPECT_LT(test::max_abs_diff(model->field()->predict(x.slice(0, 0, 1), t[0].item<double>(), Prediction::Data),
                               expected.slice(0, 0, 1)),
            1e-12);
  // Preconditioning wraps a data prediction only.
  c["prediction"] = "noise";
  EXPECT_THROW_WITH(make_model(c), InvalidArgument, "wraps a data prediction");
}

}  // namespace
}  // namespace sdegen
