// Every model's fused training step (loss_and_gradient with hand-derived gradients on raw
// buffers) against loss() and autograd: from the same random state, the same loss and the same
// gradient for every parameter, for each kind and the parameterisations it supports.
#include "sdegen/model/factory.h"
#include "support/support.h"

namespace sdegen {
namespace {

struct FusedCase {
  std::string name, kind;
  nlohmann::json overrides;
  int64_t dim = 2;
};

void PrintTo(const FusedCase& c, std::ostream* os) { *os << c.name; }

std::string case_name(const ::testing::TestParamInfo<FusedCase>& info) { return info.param.name; }

class EveryFusedStep : public ::testing::TestWithParam<FusedCase> {
 protected:
  ModelPtr make() const {
    nlohmann::json overrides = GetParam().overrides;
    if (!overrides.contains("net")) overrides["net"] = nlohmann::json::object();
    overrides["net"].update({{"width", 8}});
    torch::manual_seed(21);
    return make_model(model_config(GetParam().kind, GetParam().dim, overrides));
  }
};

TEST_P(EveryFusedStep, MatchesAutograd) {
  const ModelPtr fused = make(), reference = make();
  torch::manual_seed(4);
  const torch::Tensor y = torch::randn({13, GetParam().dim}, torch::kDouble) * 0.7 + 0.2;
  ASSERT_TRUE(fused->has_fused_step(y)) << "the case runs no fused kernel";
  for (int round = 0; round < 2; ++round) {  // a second call reuses the work buffers
    torch::manual_seed(100 + round);
    const double got = fused->loss_and_gradient(y);
    torch::manual_seed(100 + round);
    const double want = autograd_loss_and_gradient(*reference, y);
    EXPECT_NEAR(got, want, 1e-10 * (1.0 + std::fabs(want)));
    const auto fp = fused->named_parameters(), rp = reference->named_parameters();
    ASSERT_EQ(fp.size(), rp.size());
    for (size_t i = 0; i < fp.size(); ++i) {
      const torch::Tensor& g = fp[i].value().grad();
      const torch::Tensor& w = rp[i].value().grad();
      ASSERT_TRUE(g.defined()) << fp[i].key();
      const double scale = 1.0 + w.abs().max().item<double>();
      EXPECT_LT(test::max_abs_diff(g, w), 1e-9 * scale) << fp[i].key() << " in round " << round;
    }
  }
}

std::vector<FusedCase> cases() {
  return {
      {"flow", "flow", nlohmann::json::object()},
      {"flow_bmin_noise", "flow", {{"b_min", 0.1}, {"prediction", "noise"}}},
      {"flow_data_tanh", "flow", {{"prediction", "data"}, {"net", {{"activation", "tanh"}, {"time_embedding", "raw"}}}}},
      {"diffusion_vp_noise", "diffusion", nlohmann::json::object()},
      {"diffusion_vp_data", "diffusion", {{"prediction", "data"}}},
      {"diffusion_vp_v", "diffusion", {{"prediction", "v"}}},
      {"diffusion_subvp_score", "diffusion", {{"schedule", "sub-vp"}, {"prediction", "score"}}},
      {"diffusion_cosine_elbo", "diffusion", {{"schedule", "vp-cosine"}, {"weighting", "elbo"}}},
      {"diffusion_trig_antithetic", "diffusion", {{"schedule", "trig"}, {"time_sampling", "antithetic"}}},
      {"diffusion_edm", "diffusion", {{"schedule", "edm"}}},
      {"score_ve", "score", nlohmann::json::object()},
      {"vdm", "vdm", nlohmann::json::object()},  // learns lambda(0), lambda(1)
      {"vdm_data_1d", "vdm", {{"prediction", "data"}}, 1},
      {"vdm_fixed_endpoints", "vdm", {{"learn_endpoints", false}}},
      {"flow_1d", "flow", nlohmann::json::object(), 1},
      {"flow_ot", "flow", {{"coupling", "ot"}}},
      {"flow_ot_sinkhorn", "flow", {{"coupling", "ot-sinkhorn"}, {"coupling_epsilon", 0.1}}},
      {"sde", "sde", nlohmann::json::object()},
      {"sde_1d_uniform_tanh", "sde", {{"time_sampling", "uniform"}, {"sigma_knots", 3},
                                      {"net", {{"activation", "tanh"}, {"time_embedding", "raw"}}}}, 1},
      {"ode_midpoint", "ode", {{"steps", 6}}},
      {"ode_rk4_1d_tanh", "ode", {{"steps", 3}, {"solver", "rk4"}, {"net", {{"activation", "tanh"}, {"time_embedding", "raw"}}}}, 1},
      {"ode_euler_3d", "ode", {{"steps", 4}, {"solver", "euler"}}, 3},
      {"ode_heun_gelu", "ode", {{"steps", 2}, {"solver", "heun"}, {"net", {{"activation", "gelu"}}}}},
      {"sde_sinusoidal_b1", "sde", {{"b1", 0.2}, {"net", {{"time_embedding", "sinusoidal"}}}}, 3},
  };
}

INSTANTIATE_TEST_SUITE_P(Models, EveryFusedStep, ::testing::ValuesIn(cases()), case_name);

// A net with a condition vector takes its rows as kernel inputs: from the same random state the
// fused step gives autograd's loss and gradients, with condition dropout, absent rows, no
// condition at all, and given prior points (a reflowed student's pairs). The weights are
// perturbed first, so that the gradients reach the condition's columns of the first layer.
TEST(FusedStep, AConditionVectorNetMatchesAutograd) {
  for (const std::string kind : {"flow", "diffusion", "vdm"}) {
    SCOPED_TRACE(kind);
    const nlohmann::json overrides = {{"p_uncond", 0.3}, {"net", {{"width", 8}, {"condition_dim", 3}}}};
    auto make = [&] {
      torch::manual_seed(21);
      const ModelPtr m = make_model(model_config(kind, 2, overrides));
      torch::NoGradGuard g;
      for (auto& p : m->parameters()) p.add_(0.2 * torch::randn_like(p));
      return m;
    };
    const ModelPtr fused = make(), reference = make();
    torch::manual_seed(4);
    const torch::Tensor y = torch::randn({13, 2}, torch::kDouble);
    ASSERT_TRUE(fused->has_fused_step(y));
    Condition given;
    given.vector = torch::randn({13, 3}, torch::kDouble);
    given.present = (torch::arange(13) % 4 != 0).to(torch::kDouble);
    Condition paired = given;
    paired.source = torch::randn({13, 2}, torch::kDouble);
    const std::vector<std::pair<std::string, Condition>> conditions = {
        {"given", given}, {"none", Condition()}, {"paired", paired}};
    for (const auto& [name, c] : conditions) {
      torch::manual_seed(100);
      const double got = fused->loss_and_gradient(y, c);
      torch::manual_seed(100);
      const double want = autograd_loss_and_gradient(*reference, y, c);
      EXPECT_NEAR(got, want, 1e-10 * (1.0 + std::fabs(want))) << name;
      const auto fp = fused->named_parameters(), rp = reference->named_parameters();
      for (size_t i = 0; i < fp.size(); ++i) {
        const torch::Tensor& w = rp[i].value().grad();
        EXPECT_LT(test::max_abs_diff(fp[i].value().grad(), w), 1e-9 * (1.0 + w.abs().max().item<double>()))
            << name << ": " << fp[i].key();
      }
    }
  }
}

// A learned schedule shape is not derived by hand: the step falls back to autograd, and says so.
TEST(FusedStep, LearnedShapeFallsBackToAutograd) {
  torch::manual_seed(21);
  const ModelPtr m = make_model(model_config("vdm", 2, {{"schedule_knots", 3}, {"net", {{"width", 8}}}}));
  torch::manual_seed(21);
  const ModelPtr reference = make_model(model_config("vdm", 2, {{"schedule_knots", 3}, {"net", {{"width", 8}}}}));
  const torch::Tensor y = torch::randn({9, 2}, torch::kDouble);
  EXPECT_FALSE(m->has_fused_step(y));
  torch::manual_seed(5);
  const double got = m->loss_and_gradient(y);
  torch::manual_seed(5);
  EXPECT_DOUBLE_EQ(got, autograd_loss_and_gradient(*reference, y));
}

// Sampling an affine model's probability flow on raw buffers (the fixed-step samplers' path)
// gives the tensor path's states, EDM's preconditioning and every prediction included.
TEST(RawSampling, MatchesTheTensorPath) {
  const std::vector<std::pair<std::string, nlohmann::json>> models = {
      {"flow", nlohmann::json::object()},
      {"diffusion", {{"prediction", "v"}}},
      {"diffusion", {{"schedule", "edm"}}},
      {"score", nlohmann::json::object()},
      {"vdm", {{"prediction", "data"}}}};
  for (const auto& [kind, overrides] : models) {
    nlohmann::json o = overrides;
    o["net"] = {{"width", 8}};
    torch::manual_seed(3);
    const ModelPtr m = make_model(model_config(kind, 2, o));
    const auto& field = *m->field();
    ASSERT_TRUE(field.raw_velocity()) << kind << " " << overrides.dump();
    SamplerOptions so;
    so.solver = "heun";
    so.steps = 6;
    so.t0 = 0.05;
    so.t1 = 0.95;
    const torch::Tensor x0 = torch::randn({9, 2}, torch::kDouble) * field.schedule().prior_std();
    const Solution raw = sample(field, x0, so);
    const Solution ref = solve_ode(probability_flow(field), x0, sampler_grid(field.schedule(), so), *make_ode_stepper("heun"));
    ASSERT_TRUE(raw.ok() && ref.ok());
    const double scale = 1.0 + ref.x.abs().max().item<double>();
    EXPECT_LT(test::max_abs_diff(raw.x, ref.x), 1e-11 * scale) << kind << " " << overrides.dump();
    EXPECT_EQ(raw.nfe, ref.nfe);
  }
}

TEST(RawSampling, FloatNetsHaveNoRawPath) {
  torch::manual_seed(3);
  const ModelPtr m = make_model(model_config("flow", 2, {{"net", {{"width", 8}}}}));
  m->to(torch::kFloat);
  EXPECT_FALSE(m->field()->raw_velocity());
}

TEST(FusedStep, FloatModelsAndDataFallBackToAutograd) {
  torch::manual_seed(1);
  const ModelPtr m = make_model(model_config("flow", 2, {{"net", {{"width", 8}}}}));
  const torch::Tensor y32 = torch::randn({5, 2}, torch::kFloat);
  EXPECT_FALSE(m->has_fused_step(y32));
  EXPECT_TRUE(m->has_fused_step(y32.to(torch::kDouble)));
  m->to(torch::kFloat);
  EXPECT_FALSE(m->has_fused_step(torch::randn({5, 2}, torch::kDouble)));
}

}  // namespace
}  // namespace sdegen
