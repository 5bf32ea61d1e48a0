// The model module: time embeddings, the conditional MLP, its options as JSON, and the record of
// what a network outputs.
#include <nlohmann/json.hpp>

#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/model/factory.h"
#include "sdegen/net/mlp.h"
#include "sdegen/model/output.h"
#include "sdegen/net/time_embedding.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// ---- time embeddings ----

TEST(TimeEmbedding, RawIsTheTimeItself) {
  const torch::Tensor t = torch::rand({7});
  TimeEmbedding e = make_time_embedding("raw");
  EXPECT_EQ(e->dim(), 1);
  const torch::Tensor out = e(t);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{7, 1}));
  EXPECT_EQ(max_abs_diff(out.squeeze(1), t), 0.0);
}

TEST(TimeEmbedding, SinusoidalFrequenciesAreGeometricFromOneToMax) {
  SinusoidalTimeEmbedding e(SinusoidalTimeEmbeddingOptions(8).max_frequency(1000.0));
  const torch::Tensor expected = torch::tensor({1.0, 10.0, 100.0, 1000.0});
  EXPECT_LT(max_abs_diff(e->frequencies, expected), 1e-9);
  const torch::Tensor t = torch::rand({5});
  const torch::Tensor out = e(t);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{5, 8}));
  EXPECT_LT(max_abs_diff(out.select(1, 1), torch::sin(10.0 * t)), 1e-12);
  EXPECT_LT(max_abs_diff(out.select(1, 4 + 3), torch::cos(1000.0 * t)), 1e-12);
  // Sinusoidal frequencies are deterministic and saved too (they follow .to(device)).
  EXPECT_EQ(e->named_buffers().size(), 1u);
}

TEST(TimeEmbedding, FourierFeaturesUseFixedGaussianFrequencies) {
  FourierTimeEmbedding e(FourierTimeEmbeddingOptions(4000).scale(16.0));
  ASSERT_NE(e->named_buffers().find("B"), nullptr);
  EXPECT_TRUE(e->parameters().empty());  // fixed, not learned
  EXPECT_NEAR(e->B.std().item<double>(), 16.0, 0.8);
  const torch::Tensor t = torch::rand({3});
  const torch::Tensor out = e(t);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 4000}));
  const torch::Tensor s = out.narrow(1, 0, 2000), c = out.narrow(1, 2000, 2000);
  EXPECT_LT(max_abs_diff(s * s + c * c, torch::ones_like(s)), 1e-12);
  const double two_pi = 6.283185307179586;
  EXPECT_LT(max_abs_diff(s.select(1, 17), torch::sin(two_pi * e->B[17] * t)), 1e-9);
  EXPECT_EQ(max_abs_diff(e(t), out), 0.0);  // the same frequencies on every call
}

TEST(TimeEmbedding, FactoryAndBadOptions) {
  EXPECT_EQ(make_time_embedding("sinusoidal", TimeEmbeddingOptions().dim(6))->dim(), 6);
  EXPECT_EQ(make_time_embedding("fourier", TimeEmbeddingOptions().dim(10))->dim(), 10);
  EXPECT_THROW_WITH(make_time_embedding("learned"), InvalidArgument,
                    "unknown time embedding 'learned'; valid: raw, sinusoidal, fourier");
  EXPECT_THROW_WITH(make_time_embedding("fourier", TimeEmbeddingOptions().dim(5)),
                    InvalidArgument, "dim must be even and >= 2 (sin/cos pairs), got 5");
  EXPECT_THROW_WITH(make_time_embedding("fourier", TimeEmbeddingOptions().fourier_scale(0.0)),
                    InvalidArgument, "scale must be finite and > 0, got 0");
  EXPECT_THROW_WITH(make_time_embedding("sinusoidal", TimeEmbeddingOptions().max_frequency(0.5)),
                    InvalidArgument, "max_frequency must be finite and >= 1, got 0.5");
  EXPECT_THROW_WITH(make_time_embedding("raw")(torch::rand({4, 1})), InvalidArgument,
                    "RawTimeEmbedding expects t of shape [batch], got [4, 1]");
}

// ---- the MLP ----

TEST(Mlp, OutputShapeForEveryEmbeddingAndActivation) {
  const torch::Tensor x = torch::randn({10, 3});
  const torch::Tensor t = torch::rand({10});
  for (const auto& embedding : time_embedding_names()) {
    for (const auto& activation : activation_names()) {
      Mlp net(MlpOptions(3).time_embedding(embedding).activation(activation).width(16));
      const torch::Tensor out = net(x, t);
      EXPECT_EQ(out.sizes(), (std::vector<int64_t>{10, 3})) << embedding << " " << activation;
      EXPECT_TRUE(torch::isfinite(out).all().item<bool>()) << embedding << " " << activation;
    }
    Mlp wide(MlpOptions(3).out_dim(5).depth(0).time_embedding(embedding));
    EXPECT_EQ(wide(x, t).sizes(), (std::vector<int64_t>{10, 5})) << embedding;
  }
}

TEST(Mlp, ReferenceNetHasThePapersParameterCount) {
  // [x, t] -> 64 -> tanh -> 64 -> tanh -> 1 for d = 1.
  Mlp net(MlpOptions(1).activation("tanh").time_embedding("raw").width(64).depth(2));
  const int64_t d = 1;
  EXPECT_EQ(parameter_count(*net), (d + 1) * 64 + 64 + 64 * 64 + 64 + 64 * 1 + 1);
  ASSERT_EQ(net->hidden->size(), 2u);
  EXPECT_EQ(net->hidden->ptr<torch::nn::LinearImpl>(0)->weight.sizes(),
            (std::vector<int64_t>{64, 2}));
  // With d = 2 and the sinusoidal embedding the first layer sees d + embedding_dim inputs.
  Mlp sin_net(MlpOptions(2).time_embedding("sinusoidal").embedding_dim(8).depth(1).width(5));
  EXPECT_EQ(parameter_count(*sin_net), (2 + 8) * 5 + 5 + 5 * 2 + 2);
}

TEST(Mlp, ScalarTimeBroadcastsToEveryRow) {
  Mlp net(MlpOptions(2).time_embedding("sinusoidal"));
  const torch::Tensor x = torch::randn({6, 2});
  const torch::Tensor scalar = net(x, torch::tensor(0.3));
  const torch::Tensor rows = net(x, torch::full({6}, 0.3));
  EXPECT_EQ(max_abs_diff(scalar, rows), 0.0);
  // t in another floating dtype is converted to x's.
  EXPECT_LT(max_abs_diff(net(x, torch::full({6}, 0.3, torch::kFloat)), rows), 1e-6);
}

TEST(Mlp, FourierBufferIsSavedAndRestored) {
  const MlpOptions options = MlpOptions(2).time_embedding("fourier").embedding_dim(8);
  Mlp net(options);
  ASSERT_NE(net->named_buffers().find("time_embedding.B"), nullptr);
  std::stringstream stream;
  torch::save(net, stream);

  Mlp fresh(options);  // different random weights and frequencies
  const torch::Tensor x = torch::randn({5, 2});
  const torch::Tensor t = torch::rand({5});
  EXPECT_GT(max_abs_diff(fresh(x, t), net(x, t)), 1e-6);
  torch::load(fresh, stream);
  EXPECT_EQ(max_abs_diff(fresh->named_buffers()["time_embedding.B"],
                         net->named_buffers()["time_embedding.B"]),
            0.0);
  EXPECT_EQ(max_abs_diff(fresh(x, t), net(x, t)), 0.0);
}

TEST(Mlp, CloneIsADeepCopy) {
  Mlp net(MlpOptions(2).time_embedding("fourier").num_classes(3));
  Mlp copy(std::dynamic_pointer_cast<MlpImpl>(net->clone()));
  ASSERT_TRUE(copy);
  const torch::Tensor x = torch::randn({4, 2});
  const torch::Tensor t = torch::rand({4});
  const torch::Tensor y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const torch::Tensor before = net(x, t, y);
  EXPECT_EQ(max_abs_diff(copy(x, t, y), before), 0.0);
  {
    torch::NoGradGuard no_grad;
    copy->output->bias.add_(1.0);
  }
  EXPECT_LT(max_abs_diff(copy(x, t, y), before + 1.0), 1e-12);
  EXPECT_EQ(max_abs_diff(net(x, t, y), before), 0.0) << "the copy shares storage";
}

TEST(Mlp, ClassConditionalNetUsesAndChecksItsLabels) {
  Mlp net(MlpOptions(2).num_classes(3).class_dim(4));
  const torch::Tensor x = torch::randn({8, 2});
  const torch::Tensor t = torch::rand({8});
  const torch::Tensor zeros = torch::zeros({8}, torch::kLong);
  const torch::Tensor ones = torch::ones({8}, torch::kLong);
  EXPECT_GT(max_abs_diff(net(x, t, zeros), net(x, t, ones)), 1e-6);
  EXPECT_THROW_WITH(net(x, t, torch::full({8}, 3, torch::kLong)), InvalidArgument,
                    "Mlp expects labels in [0, 3) or -1 (no label), got values in [3, 3]");
  EXPECT_THROW_WITH(net(x, t, torch::full({8}, -2, torch::kLong)), InvalidArgument,
                    "got values in [-2, -2]");
  // No labels, and kNullLabel on every row, are the same: the null row of the embedding, which
  // differs from every class's row.
  const torch::Tensor null = torch::full({8}, kNullLabel, torch::kLong);
  EXPECT_EQ(max_abs_diff(net(x, t), net(x, t, null)), 0.0);
  EXPECT_GT(max_abs_diff(net(x, t, null), net(x, t, zeros)), 1e-6);
  torch::Tensor mixed = zeros.clone();
  mixed[3] = kNullLabel;
  const torch::Tensor out = net(x, t, mixed);
  EXPECT_EQ(max_abs_diff(out[3], net(x, t)[3]), 0.0);
  EXPECT_EQ(max_abs_diff(out[0], net(x, t, zeros)[0]), 0.0);
  EXPECT_THROW_WITH(net(x, t, torch::zeros({7}, torch::kLong)), InvalidArgument,
                    "Mlp expects labels of shape [batch] = [8], got [7]");
  EXPECT_THROW_WITH(net(x, t, torch::zeros({8})), InvalidArgument, "integer labels");

  Mlp unconditional(MlpOptions(2));
  EXPECT_THROW_WITH(unconditional(x, t, zeros), InvalidArgument,
                    "Mlp is unconditional (num_classes = 0) but was given labels of shape [8]");
}

TEST(Mlp, ZeroInitOutputGivesZero) {
  Mlp net(MlpOptions(3).zero_init_output(true).time_embedding("fourier"));
  const torch::Tensor out = net(torch::randn({9, 3}), torch::rand({9}));
  EXPECT_EQ(out.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(net->output->weight.requires_grad());
}

TEST(Mlp, XInitScaleScalesOnlyTheFirstLayersWeightsOnX) {
  for (const int64_t depth : {0, 2}) {
    torch::manual_seed(3);
    Mlp plain(MlpOptions(2).depth(depth).time_embedding("fourier").embedding_dim(4));
    torch::manual_seed(3);
    Mlp scaled(MlpOptions(2).depth(depth).time_embedding("fourier").embedding_dim(4).x_init_scale(8.0));
    const auto a = plain->named_parameters(), b = scaled->named_parameters();
    const std::string first = depth == 0 ? "output.weight" : "hidden.0.weight";
    for (const auto& p : a) {
      const torch::Tensor& q = b[p.key()];
      if (p.key() != first) {
        EXPECT_EQ(max_abs_diff(p.value(), q), 0.0) << depth << " " << p.key();
        continue;
      }
      // Columns 0..1 act on x, the rest on the time features.
      EXPECT_LT(max_abs_diff(8.0 * p.value().narrow(1, 0, 2), q.narrow(1, 0, 2)), 1e-15) << depth;
      EXPECT_EQ(max_abs_diff(p.value().narrow(1, 2, 4), q.narrow(1, 2, 4)), 0.0) << depth;
    }
    EXPECT_EQ(max_abs_diff(plain->named_buffers()["time_embedding.B"], scaled->named_buffers()["time_embedding.B"]),
              0.0);
  }
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).x_init_scale(0.0)), InvalidArgument, "x_init_scale must be finite and > 0");
}

// What x_init_scale is for: standardised laplace5 has peaks 0.17 wide and 0.69 apart, and at
// scale 1 the net stays a smooth function of x on that scale. Fitting the Laplace-mixture bumps
// themselves by regression (1000 Adam steps at the recipes' learning rate), the models' default
// net (factory.h) leaves 1-3% of the bumps' variance unexplained (seeds 0-2); the same net at
// scale 1 leaves 38-47%.
TEST(Mlp, TheModelsDefaultNetFitsNarrowFeatures) {
  const torch::Tensor x = torch::linspace(-2.5, 2.5, 512, torch::kDouble).unsqueeze(1);
  const torch::Tensor centers = torch::tensor({-1.38, -0.69, 0.0, 0.69, 1.38}, torch::kDouble);
  const torch::Tensor y = torch::exp(-(x - centers.unsqueeze(0)).abs() / 0.17).sum(1, true);
  const torch::Tensor t = torch::zeros({512}, torch::kDouble);
  const MlpOptions models_default = mlp_options_from_json(model_config("ode", 1).at("net"));
  auto unexplained = [&](const MlpOptions& options) {
    torch::manual_seed(0);
    Mlp net(options);
    net->to(torch::kDouble);
    torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(2e-3));
    for (int step = 0; step < 1000; ++step) {
      adam.zero_grad();
      (net(x, t) - y).pow(2).mean().backward();
      adam.step();
    }
    torch::NoGradGuard no_grad;
    return ((net(x, t) - y).pow(2).mean() / y.var()).item<double>();
  };
  const double sharp = unexplained(models_default);
  const double smooth = unexplained(MlpOptions(models_default).x_init_scale(1.0));
  EXPECT_LT(sharp, 0.06);
  EXPECT_GT(smooth, 0.2);
}

TEST(Mlp, GradientsReachEveryParameter) {
  for (const auto& embedding : time_embedding_names()) {
    Mlp net(MlpOptions(2).time_embedding(embedding).num_classes(2).activation("gelu"));
    const torch::Tensor labels = torch::tensor({0, 1, 0, 1, 1}, torch::kLong);
    net(torch::randn({5, 2}), torch::rand({5}), labels).sum().backward();
    for (const auto& p : net->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << embedding << " " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << embedding << " " << p.key();
    }
  }
}

TEST(Mlp, WorksInsideASequentialThroughItsDefaultLabels) {
  Mlp net(MlpOptions(2));
  torch::nn::AnyModule any(net);
  const torch::Tensor x = torch::randn({3, 2});
  const torch::Tensor t = torch::rand({3});
  EXPECT_EQ(max_abs_diff(any.forward(x, t), net(x, t)), 0.0);
}

TEST(Mlp, RefusesBadShapes) {
  Mlp net(MlpOptions(3));
  const torch::Tensor t = torch::rand({10});
  EXPECT_THROW_WITH(net(torch::randn({10, 2}), t), InvalidArgument,
                    "Mlp expects x of shape [batch, 3], got [10, 2]");
  EXPECT_THROW_WITH(net(torch::randn({10}), t), InvalidArgument,
                    "Mlp expects x of shape [batch, 3], got [10]");
  EXPECT_THROW_WITH(net(torch::randn({10, 3}), torch::rand({10, 1})), InvalidArgument,
                    "Mlp expects t of shape [batch] = [10] or a scalar, got [10, 1]");
  EXPECT_THROW_WITH(net(torch::randn({10, 3}), torch::rand({9})), InvalidArgument,
                    "got [9]");
  EXPECT_THROW_WITH(net(torch::randn({10, 3}), torch::zeros({10}, torch::kLong)),
                    InvalidArgument, "Mlp expects floating-point t");
}

TEST(Mlp, RefusesBadOptions) {
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).width(0)), InvalidArgument, "width must be >= 1, got 0");
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).depth(-1)), InvalidArgument, "depth must be >= 0, got -1");
  EXPECT_THROW_WITH(Mlp(MlpOptions(0)), InvalidArgument, "in_dim must be >= 1, got 0");
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).activation("swish")), InvalidArgument,
                    "unknown activation 'swish'; valid: tanh, relu, gelu, silu, softplus");
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).time_embedding("learned")), InvalidArgument,
                    "unknown time embedding 'learned'; valid: raw, sinusoidal, fourier");
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).embedding_dim(7)), InvalidArgument,
                    "embedding_dim must be even and >= 2, got 7");
  EXPECT_THROW_WITH(Mlp(MlpOptions(2).num_classes(-2)), InvalidArgument,
                    "num_classes must be >= 0");
}

// ---- options as JSON ----

TEST(MlpJson, RoundTripRebuildsTheSameNetwork) {
  const MlpOptions options = MlpOptions(3)
                                 .out_dim(2)
                                 .width(12)
                                 .depth(3)
                                 .activation("softplus")
                                 .time_embedding("fourier")
                                 .embedding_dim(6)
                                 .fourier_scale(4.5)
                                 .max_frequency(250.0)
                                 .num_classes(5)
                                 .class_dim(3)
                                 .zero_init_output(true)
                                 .x_init_scale(6.5);
  const nlohmann::json written = to_json(options);
  const MlpOptions read = mlp_options_from_json(nlohmann::json::parse(written.dump()));
  EXPECT_EQ(to_json(read), written);

  Mlp a(options), b(read);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) {
    ASSERT_NE(pb.find(p.key()), nullptr) << p.key();
    EXPECT_EQ(p.value().sizes(), pb[p.key()].sizes()) << p.key();
  }
  EXPECT_EQ(a->named_buffers()["time_embedding.B"].sizes(),
            b->named_buffers()["time_embedding.B"].sizes());
}

TEST(MlpJson, XInitScaleIsWrittenOnlyWhenNotOneAndReadsAsOneWhenAbsent) {
  // Configs (and so checkpoints, which compare them exactly) of default nets are unchanged.
  EXPECT_FALSE(to_json(MlpOptions(2)).contains("x_init_scale"));
  nlohmann::json j = to_json(MlpOptions(2).x_init_scale(4.0));
  EXPECT_EQ(mlp_options_from_json(j).x_init_scale(), 4.0);
  j.erase("x_init_scale");  // as written before the option existed
  EXPECT_EQ(mlp_options_from_json(j).x_init_scale(), 1.0);
  j["x_init_scale"] = -1.0;
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument, "x_init_scale must be finite and > 0");
}

TEST(MlpJson, RefusesMissingIllTypedAndUnknownKeys) {
  const nlohmann::json good = to_json(MlpOptions(2));
  nlohmann::json j = good;
  j.erase("width");
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument, "Mlp options: missing key 'width'");
  j = good;
  j["depth"] = "two";
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument,
                    "Mlp options: 'depth' must be an integer, got \"two\"");
  j = good;
  j["width"] = 64.5;
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument, "'width' must be an integer");
  j = good;
  j["zero_init_output"] = 1;
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument,
                    "'zero_init_output' must be true or false, got 1");
  j = good;
  j["widht"] = 3;
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument, "unknown Mlp option 'widht'");
  j = good;
  j["type"] = "unet";
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument, "'type' must be \"mlp\"");
  j = good;
  j["activation"] = "swish";
  EXPECT_THROW_WITH(mlp_options_from_json(j), InvalidArgument, "unknown activation 'swish'");
  EXPECT_THROW_WITH(mlp_options_from_json(nlohmann::json::array()), InvalidArgument,
                    "expected a JSON object");
}

// ---- what a network outputs ----

TEST(NetOutput, NamesAndPredictions) {
  for (const auto& n : net_output_names()) EXPECT_EQ(net_output_name(net_output_from_name(n)), n);
  EXPECT_FALSE(as_prediction(NetOutput::Drift).has_value());
  for (const auto& n : prediction_names()) {
    const Prediction p = prediction_from_name(n);
    EXPECT_EQ(net_output_name(net_output_of(p)), n);
    ASSERT_TRUE(as_prediction(net_output_of(p)).has_value());
    EXPECT_EQ(*as_prediction(net_output_of(p)), p);
  }
  EXPECT_THROW_WITH(net_output_from_name("eps"), InvalidArgument,
                    "unknown network output 'eps'; valid: data, noise, score, velocity, v, drift");
}

}  // namespace
}  // namespace sdegen
