// Any network in an affine model: a convolutional net of the test's own on an image shape beside
// the MLP on vectors; class labels with their dropout; classifier-free guidance (math.md).
#include "sdegen/core/error.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/sde_model.h"
#include "support/support.h"

namespace sdegen {
namespace {

// x [B, C, H, W] -> [B, C, H, W]: two convolutions, with time and label as per-channel biases.
// Not a library network: it shows that a model needs nothing of a net but the interface.
class TinyConvNetImpl : public NetworkImpl {
 public:
  TinyConvNetImpl(std::vector<int64_t> shape, int64_t classes) : shape_(std::move(shape)), classes_(classes) {
    const int64_t c = shape_[0];
    in = register_module("in", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, 8, 3).padding(1)));
    out = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, c, 3).padding(1)));
    time = register_module("time", torch::nn::Linear(1, 8));
    if (classes_ > 0) label = register_module("label", torch::nn::Embedding(classes_ + 1, 8));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& c = {}) override {
    check_network_inputs("TinyConvNet", shape_, classes_, x, t, c);
    const int64_t n = x.size(0);
    torch::Tensor e = time((t.dim() == 0 ? t.expand({n}) : t).to(x.dtype()).reshape({n, 1}));
    if (label) e = e + label(label_rows(c, classes_, n, x.device()));
    return out(torch::silu(in(x) + e.reshape({n, 8, 1, 1})));
  }
  std::vector<int64_t> shape() const override { return shape_; }
  int64_t num_classes() const override { return classes_; }
  nlohmann::json config() const override { return {{"type", "tiny-conv"}}; }

  torch::nn::Conv2d in{nullptr}, out{nullptr};
  torch::nn::Linear time{nullptr};
  torch::nn::Embedding label{nullptr};

 private:
  std::vector<int64_t> shape_;
  int64_t classes_;
};

std::shared_ptr<AffineModel> image_model(const std::string& kind, int64_t classes = 0, double p_uncond = 0.1) {
  AffineModelOptions o = affine_model_defaults(kind, 1);
  o.p_uncond = p_uncond;
  return std::make_shared<AffineModel>(o, std::make_shared<TinyConvNetImpl>(std::vector<int64_t>{1, 4, 4}, classes));
}

std::shared_ptr<AffineModel> vector_model(const std::string& kind, int64_t classes, bool edm = false) {
  AffineModelOptions o = affine_model_defaults(kind, 2);
  o.net = to_json(MlpOptions(2).width(16).num_classes(classes));
  if (edm) {
    o.schedule = "edm";
    o.prediction = Prediction::Data;
    o.precondition = true;
  }
  return std::make_shared<AffineModel>(o);
}

class EveryAffineKindOnImages : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryAffineKindOnImages, TrainsEvaluatesAndSamplesThroughTheInterface) {
  torch::manual_seed(1);
  auto m = image_model(GetParam());
  EXPECT_EQ(m->shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(m->dim(), 16);
  EXPECT_FALSE(m->has_fused_step(torch::randn({8, 1, 4, 4}, torch::kDouble)));
  const torch::Tensor y = 0.5 * torch::randn({32, 1, 4, 4}, torch::kDouble);
  const double loss = m->loss_and_gradient(y);
  EXPECT_TRUE(std::isfinite(loss));
  for (const auto& p : m->net().named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  const ElboTerms terms = m->elbo(y, 2);
  EXPECT_EQ(terms.total().sizes(), torch::IntArrayRef({32}));
  EXPECT_TRUE(torch::isfinite(terms.total()).all().item<bool>());

  const torch::Tensor x0 = sample_model_prior(*m, 5);
  EXPECT_EQ(x0.sizes(), torch::IntArrayRef({5, 1, 4, 4}));
  SamplerOptions s;
  s.solver = "heun";
  s.steps = 8;
  const Solution sol = generate(*m, x0, s);
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.x.sizes(), x0.sizes());
  EXPECT_TRUE(torch::isfinite(sol.x).all().item<bool>());

  EXPECT_THROW_WITH(m->loss(torch::randn({4, 16}, torch::kDouble)), InvalidArgument,
                    "expects data of shape [batch, 1, 4, 4], got [4, 16]");
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryAffineKindOnImages, ::testing::Values("flow", "diffusion", "score", "vdm"));

TEST(NetworkModels, Float32ModelsComputeInFloat32) {
  torch::manual_seed(2);
  nlohmann::json config = model_config("flow", 3, {{"dtype", "float32"}});
  const ModelPtr m = make_model(config);
  for (const auto& p : m->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
  EXPECT_EQ(m->config(), config);
  const torch::Tensor y = torch::randn({16, 3}, torch::kFloat);
  EXPECT_TRUE(std::isfinite(m->loss_and_gradient(y)));
  EXPECT_THROW_WITH(m->loss(y.to(torch::kDouble)), InvalidArgument,
                    "the 'flow' model computes in float32; got data of type Double");
  EXPECT_EQ(sample_model_prior(*m, 4).scalar_type(), torch::kFloat);
  EXPECT_THROW_WITH(make_model(model_config("flow", 3, {{"dtype", "float16"}})), InvalidArgument,
                    "unknown dtype 'float16'");
}

TEST(NetworkModels, ConditionalConfigurationRoundTrips) {
  nlohmann::json net = to_json(MlpOptions(2).num_classes(4));
  const nlohmann::json config = model_config("diffusion", 2, {{"net", net}, {"p_uncond", 0.2}});
  const ModelPtr m = make_model(config);
  EXPECT_EQ(m->num_classes(), 4);
  EXPECT_EQ(m->config(), config);
  EXPECT_EQ(make_model(m->config())->config(), config);
}

TEST(NetworkModels, LabelsAreDroppedAtTheUnconditionalRate) {
  const torch::Tensor y = torch::randn({64, 2}, torch::kDouble);
  const torch::Tensor labels = torch::randint(0, 3, {64}, torch::kLong);
  auto loss_at = [&](double p_uncond, const Condition& c) {
    torch::manual_seed(5);
    AffineModelOptions o = affine_model_defaults("flow", 2);
    o.net = to_json(MlpOptions(2).width(16).num_classes(3));
    o.p_uncond = p_uncond;
    auto m = std::make_shared<AffineModel>(o);
    torch::manual_seed(6);  // the same times and noise for every call
    return m->loss(y, c).item<double>();
  };
  // Every label dropped: the null label, which is what no labels mean.
  EXPECT_DOUBLE_EQ(loss_at(1.0, labels), loss_at(1.0, Condition{}));
  // None dropped: the labels change the loss.
  EXPECT_NE(loss_at(0.0, labels), loss_at(0.0, Condition{}));
  EXPECT_THROW_WITH(vector_model("flow", 0)->loss(y, labels), InvalidArgument,
                    "Mlp is unconditional (num_classes = 0) but was given labels");
  SdeModelOptions so;
  so.net = to_json(MlpOptions(2).width(8));
  SdeModel sde(so);
  EXPECT_THROW_WITH(sde.loss(y, labels), InvalidArgument, "the 'sde' model is unconditional but was given labels");
}

// math.md: guided = uncond + w (cond - uncond), applied to one prediction; since every prediction
// is affine in the native one at fixed (x, t), guiding any of them gives the same field.
struct GuidanceCase {
  std::string name, kind;
  bool edm;
};

class GuidanceIdentities : public ::testing::TestWithParam<GuidanceCase> {};

TEST_P(GuidanceIdentities, ZeroIsUnconditionalOneIsConditionalAndEverySpaceAgrees) {
  torch::manual_seed(7);
  auto m = vector_model(GetParam().kind, 3, GetParam().edm);
  const torch::Tensor x = torch::randn({6, 2}, torch::kDouble);
  const torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  const double t = 0.4;
  const auto uncond = m->field(), cond = m->guided_field(labels, 1.0);
  // w = 1 is the conditional network; the unconditional one is the null label.
  const torch::Tensor native_t = torch::full({6}, t, torch::kDouble);
  EXPECT_LT(test::max_abs_diff(cond->predict(x, t, m->options().prediction), m->predict_native(x, native_t, labels)),
            1e-12);
  EXPECT_LT(test::max_abs_diff(uncond->predict(x, t, m->options().prediction),
                               m->predict_native(x, native_t, torch::full({6}, kNullLabel, torch::kLong))),
            1e-12);
  EXPECT_GT(test::max_abs_diff(cond->predict(x, t, Prediction::Velocity), uncond->predict(x, t, Prediction::Velocity)),
            1e-6);
  for (const Prediction p : {Prediction::Noise, Prediction::Data, Prediction::Score, Prediction::Velocity}) {
    EXPECT_EQ(test::max_abs_diff(m->guided_field(labels, 0.0)->predict(x, t, p), uncond->predict(x, t, p)), 0.0);
    for (const double w : {2.5, -0.5}) {
      const torch::Tensor u = uncond->predict(x, t, p), c = cond->predict(x, t, p);
      const torch::Tensor guided = m->guided_field(labels, w)->predict(x, t, p);
      EXPECT_LT(test::max_abs_diff(guided, u + w * (c - u)), 1e-9)
          << prediction_name(p) << " at w = " << w;
    }
  }
  // Sampling with guidance: the same prior draws, other endpoints; w = 0 is the unconditional run.
  SamplerOptions s;
  s.solver = "rk4";
  s.steps = 10;
  const torch::Tensor x0 = torch::randn({6, 2}, torch::kDouble);
  const Solution plain = generate(*m, x0, s), w0 = generate(*m, x0, s, {labels, 0.0}),
                 w3 = generate(*m, x0, s, {labels, 3.0});
  ASSERT_TRUE(plain.ok() && w0.ok() && w3.ok());
  EXPECT_LT(test::max_abs_diff(plain.x, w0.x), 1e-12);
  EXPECT_GT(test::max_abs_diff(plain.x, w3.x), 1e-6);
  EXPECT_THROW_WITH(generate(*m, x0, s, {labels.narrow(0, 0, 3), 2.0}), InvalidArgument,
                    "labels must be [n] = [6]");
  EXPECT_THROW_WITH(vector_model(GetParam().kind, 0)->guided_field(labels, 2.0), InvalidArgument,
                    "guidance needs a conditional model");
}

INSTANTIATE_TEST_SUITE_P(Parameterisations, GuidanceIdentities,
                         ::testing::Values(GuidanceCase{"flow_velocity", "flow", false},
                                           GuidanceCase{"diffusion_noise", "diffusion", false},
                                           GuidanceCase{"edm_data", "diffusion", true},
                                           GuidanceCase{"vdm_noise", "vdm", false}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace sdegen
