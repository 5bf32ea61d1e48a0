#include "sdegen/model/factory.h"

#include <algorithm>

#include "sdegen/core/check.h"

namespace sdegen {

std::vector<std::string> model_names() { return {"flow", "diffusion", "score", "vdm"}; }

ModelPtr make_model(const nlohmann::json& config) {
  try {
    const std::string kind = config.at("kind").get<std::string>();
    check_name("model", kind, model_names());
    const MlpOptions net = mlp_options_from_json(config.at("net"));
    AffineModelOptions o = affine_model_defaults(kind, net.in_dim());
    o.net = net;
    o.schedule = config.at("schedule").get<std::string>();
    o.prediction = prediction_from_name(config.at("prediction").get<std::string>());
    o.weighting = weighting_from_name(config.at("weighting").get<std::string>());
    o.time_sampling = config.at("time_sampling").get<std::string>();
    o.t_epsilon = config.at("t_epsilon").get<double>();
    o.schedule_options.b_min = config.at("b_min").get<double>();
    o.delta = config.at("delta").get<double>();
    auto model = std::make_shared<AffineModel>(o);
    model->to(torch::kDouble);
    return model;
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string("model configuration is malformed: ") + e.what());
  }
}

Solution generate(const AffineModel& model, const torch::Tensor& x0, SamplerOptions options) {
  const double hi = model.time_range().second;
  const bool velocity = model.options().prediction == Prediction::Velocity;
  const double end = velocity ? 1.0 : hi;
  options.t1 = std::min(options.t1, end);
  Solution sol = sample(*model.field(), x0, options);
  if (sol.ok() && options.t1 < 1.0) sol.x = model.field()->predict(sol.x, options.t1, Prediction::Data);
  return sol;
}

Solution generate(const GenerativeModel& model, const torch::Tensor& x0, SamplerOptions options) {
  if (const auto* affine = dynamic_cast<const AffineModel*>(&model)) return generate(*affine, x0, options);
  const auto deterministic = ode_sampler_names();
  const bool ode_solver = std::find(deterministic.begin(), deterministic.end(), options.solver) != deterministic.end();
  if (!model.has_probability_flow())
    SDEGEN_CHECK(!ode_solver, "the '", model.kind(), "' model has no probability-flow ODE (its marginal score is ",
                 "unknown); sample it with euler-maruyama, which uses its learned diffusion");
  else
    SDEGEN_CHECK(options.diffusion.is_zero(), "the '", model.kind(),
                 "' model is deterministic; it samples with zero diffusion, not sigma = ",
                 diffusion_name(options.diffusion));
  return sample_sde(*model.sde(options.diffusion), x0, options);
}

torch::Tensor sample_model_prior(const GenerativeModel& model, int64_t n, const torch::Device& device) {
  const double prior_std = model.sde(DiffusionSpec{})->prior_std();
  return prior_std * torch::randn({n, model.dim()}, torch::TensorOptions(torch::kDouble).device(device));
}

}  // namespace sdegen
