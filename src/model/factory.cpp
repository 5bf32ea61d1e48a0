#include "sdegen/model/factory.h"

#include <algorithm>
#include <type_traits>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/model/autoencoder.h"
#include "sdegen/model/consistency_model.h"
#include "sdegen/model/ode_model.h"
#include "sdegen/model/sde_model.h"

namespace sdegen {

std::vector<std::string> model_names() { return {"sde", "ode", "flow", "diffusion", "score", "vdm"}; }

namespace {

// The paper's reference nets are small; the defaults here are what trains laplace5 well.
// x_init_scale: sdegen standardises data, and in those units laplace5's peaks are 0.17 wide and
// 0.69 apart; at the default initialisation every model stays smooth on that scale and misses
// the peaks whatever its width, learning rate or steps (see MlpOptions::x_init_scale). 14 lets
// the nets resolve them (flow matching on laplace5: held-out log-likelihood -3.08 -> -3.03).
MlpOptions default_net(int64_t dim) {
  return MlpOptions(dim).width(64).depth(3).activation("silu").time_embedding("fourier").fourier_scale(4.0).x_init_scale(
      14.0);
}

nlohmann::json default_config(const std::string& kind, int64_t dim) {
  check_name("model", kind, model_names());
  SDEGEN_CHECK(dim >= 1, "model dimension must be >= 1, got ", dim);
  if (kind == "sde") {
    SdeModelOptions o;
    o.net = to_json(default_net(dim));
    return to_json(o);
  }
  if (kind == "ode") {
    OdeModelOptions o;
    o.net = to_json(default_net(dim));
    return to_json(o);
  }
  AffineModelOptions o = affine_model_defaults(kind, dim);
  o.net = to_json(default_net(dim));
  return to_json(o);
}

template <typename T>
T get(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  SDEGEN_CHECK(it != config.end(), "model configuration has no '", key, "'");
  const auto wrong_type = [&] {
    return InvalidArgument(detail::concat("model configuration: '", key, "' has the wrong type: ", it->dump()));
  };
  // nlohmann converts between booleans and numbers and truncates 2.5 to an integer; refuse both.
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) throw wrong_type();
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) throw wrong_type();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) throw wrong_type();
  }
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw wrong_type();
  }
}

void check_keys(const nlohmann::json& config, const nlohmann::json& reference) {
  std::vector<std::string> valid;
  for (const auto& item : reference.items()) valid.push_back(item.key());
  for (const auto& item : config.items()) check_name("model configuration key", item.key(), valid);
}

// The default net's x_init_scale assumes inputs of unit scale. On a schedule with a = 1 and b up
// to sigma_max (ve: 50, edm: 80) the net sees x ~ 50 near the prior unless preconditioned, and a
// large scale there makes a briefly trained score model diverge (a few seconds of training:
// log-likelihood -8, W1 14) and lowers its held-out log-likelihood after a full recipe (-3.07 ->
// -3.24 on laplace5): those nets start at scale 1 unless the overrides set it.
void unit_init_scale_for_wide_inputs(nlohmann::json& config, const nlohmann::json& overrides) {
  const std::string schedule = config.value("schedule", "");
  const bool wide_inputs = (schedule == "ve" || schedule == "edm") && !config.value("precondition", false);
  const bool overridden = overrides.is_object() && overrides.contains("net") && overrides["net"].is_object() &&
                          overrides["net"].contains("x_init_scale");
  const bool mlp = config["net"].value("type", "") == "mlp";
  if (wide_inputs && mlp && !overridden) config["net"].erase("x_init_scale");  // absent means 1 (mlp.h)
}

}  // namespace

nlohmann::json model_config(const std::string& kind, int64_t dim, const nlohmann::json& overrides) {
  nlohmann::json config;
  if (kind == "consistency") {
    ConsistencyOptions o;
    o.net = to_json(default_net(dim));
    config = to_json(o);
  } else if (kind == "autoencoder") {
    config = autoencoder_default_config();  // images only: the overrides' net gives the shape
  } else {
    config = default_config(kind, dim);
  }
  if (overrides.is_null()) {
    unit_init_scale_for_wide_inputs(config, overrides);
    return config;
  }
  SDEGEN_CHECK(overrides.is_object(), "model overrides must be a JSON object, got ", overrides.dump());
  check_keys(overrides, config);
  for (const auto& item : overrides.items()) {
    if (item.key() == "kind") {
      SDEGEN_CHECK(item.value() == kind, "model overrides name kind ", item.value().dump(), " for a '", kind,
                   "' model");
    } else if (item.key() == "net" && item.value().is_object() && item.value().contains("type") &&
               item.value()["type"] != config["net"]["type"]) {
      // Another kind of network (a U-Net for images): its own complete configuration, checked
      // by make_network.
      config["net"] = item.value();
      // Images train in float32 unless the overrides say otherwise (AffineModelOptions::dtype).
      if (!overrides.contains("dtype")) config["dtype"] = "float32";
      // Only the MLP has a closed-form Jacobian; another network's divergence is Hutchinson's.
      if (kind == "ode" && !overrides.contains("exact_divergence")) config["exact_divergence"] = false;
    } else if (item.key() == "net" && item.value().is_object()) {
      nlohmann::json keys = config["net"];
      // The MLP's optional keys, absent from its config at their defaults (mlp.h).
      if (keys.value("type", "") == "mlp") keys["condition_dim"] = 0, keys["x_init_scale"] = 1.0;
      check_keys(item.value(), keys);
      config["net"].update(item.value());
    } else {
      config[item.key()] = item.value();
    }
  }
  // diffusion on the edm schedule means EDM: preconditioned data prediction, EDM's weight and
  // log-normal noise levels, unless the overrides say otherwise.
  if (kind == "diffusion" && config["schedule"] == "edm") {
    const nlohmann::json edm = {{"prediction", "data"}, {"weighting", "edm"}, {"time_sampling", "lognormal"},
                                {"precondition", true}};
    for (const auto& item : edm.items())
      if (!overrides.contains(item.key())) config[item.key()] = item.value();
  }
  unit_init_scale_for_wide_inputs(config, overrides);
  return config;
}

ModelPtr make_model(const nlohmann::json& config) {
  SDEGEN_CHECK(config.is_object(), "model configuration must be a JSON object, got ", config.dump());
  const std::string kind = get<std::string>(config, "kind");
  if (kind == "consistency") return std::make_shared<ConsistencyModel>(consistency_options_from_json(config));
  if (kind == "autoencoder") return std::make_shared<AutoencoderModel>(autoencoder_model_options_from_json(config));
  check_name("model", kind, model_names());
  SDEGEN_CHECK(config.contains("net"), "model configuration has no 'net'");
  check_keys(config, default_config(kind, 1));
  if (kind == "sde") {
    SdeModelOptions o;
    o.net = config.at("net");  // make_network checks it
    o.b1 = get<double>(config, "b1");
    o.delta = get<double>(config, "delta");
    o.sigma_knots = get<int64_t>(config, "sigma_knots");
    o.time_sampling = get<std::string>(config, "time_sampling");
    if (config.contains("dtype")) o.dtype = get<std::string>(config, "dtype");  // absent before images
    return std::make_shared<SdeModel>(o);  // in o.dtype
  }
  if (kind == "ode") {
    OdeModelOptions o;
    o.net = config.at("net");  // make_network checks it
    o.steps = get<int>(config, "steps");
    o.solver = get<std::string>(config, "solver");
    o.exact_divergence = get<bool>(config, "exact_divergence");
    o.probes = get<int64_t>(config, "probes");
    if (config.contains("dtype")) o.dtype = get<std::string>(config, "dtype");  // absent before images
    return std::make_shared<OdeModel>(o);  // in o.dtype
  }
  AffineModelOptions o = affine_model_defaults(kind, 1);
  o.net = config.at("net");  // make_network checks it
  o.schedule = get<std::string>(config, "schedule");
  o.prediction = prediction_from_name(get<std::string>(config, "prediction"));
  o.weighting = weighting_from_name(get<std::string>(config, "weighting"));
  o.time_sampling = get<std::string>(config, "time_sampling");
  o.t_epsilon = get<double>(config, "t_epsilon");
  o.schedule_options.b_min = get<double>(config, "b_min");
  o.delta = get<double>(config, "delta");
  o.precondition = get<bool>(config, "precondition");
  o.sigma_data = get<double>(config, "sigma_data");
  // Absent from configurations written before classifier-free guidance and float32 images.
  if (config.contains("p_uncond")) o.p_uncond = get<double>(config, "p_uncond");
  if (config.contains("dtype")) o.dtype = get<std::string>(config, "dtype");
  // Absent from configurations written before minibatch couplings.
  if (config.contains("coupling")) o.coupling = get<std::string>(config, "coupling");
  if (config.contains("coupling_epsilon")) o.coupling_epsilon = get<double>(config, "coupling_epsilon");
  if (kind == "vdm") {
    o.learn_endpoints = get<bool>(config, "learn_endpoints");
    o.schedule_options.lambda_min = get<double>(config, "lambda_min");
    o.schedule_options.lambda_max = get<double>(config, "lambda_max");
    o.schedule_knots = get<int64_t>(config, "schedule_knots");
  }
  return std::make_shared<AffineModel>(o);  // in o.dtype
}

Solution generate(const AffineModel& model, const torch::Tensor& x0, SamplerOptions options, const Guidance& guidance,
                  const Observer& observer) {
  const double hi = model.time_range().second;
  const bool velocity = model.options().prediction == Prediction::Velocity;
  const double end = velocity ? 1.0 : hi;
  options.t1 = std::min(options.t1, end);
  const Condition& c = guidance.condition;
  if (c.labels.defined())
    SDEGEN_CHECK(c.labels.dim() == 1 && c.labels.size(0) == x0.size(0), "generate: labels must be [n] = [",
                 x0.size(0), "] like the prior draws, got ", c.labels.sizes());
  if (c.vector.defined())
    SDEGEN_CHECK(c.vector.dim() == 2 && c.vector.size(0) == x0.size(0) && c.vector.size(1) == model.condition_dim(),
                 "generate: the condition vector must be [n, condition_dim] = [", x0.size(0), ", ",
                 model.condition_dim(), "], got ", c.vector.sizes());
  const auto field = model.guided_field(guidance.condition, guidance.weight);
  Solution sol = sample(*field, x0, options, observer);
  if (sol.ok() && options.t1 < 1.0) sol.x = field->predict(sol.x, options.t1, Prediction::Data);
  return sol;
}

Solution generate(const GenerativeModel& model, const torch::Tensor& x0, SamplerOptions options,
                  const Guidance& guidance, const Observer& observer) {
  const bool consistency_solver = options.solver == consistency_solver_name();
  if (const auto* cm = dynamic_cast<const ConsistencyModel*>(&model)) {
    SDEGEN_CHECK(consistency_solver, "a consistency model maps noise to data in one or a few evaluations: sample it ",
                 "with --solver consistency --steps K, not '", options.solver, "'");
    SDEGEN_CHECK(guidance.weight == 1.0, "a consistency model learns no unconditional map to guide by; use guidance 1");
    return consistency_sample(*cm, x0, options.steps, guidance.condition);
  }
  SDEGEN_CHECK(!consistency_solver, "the consistency solver samples a consistency model (sdegen train --model ",
               "consistency, or sdegen distill); the '", model.kind(), "' model integrates its SDE or ODE");
  if (const auto* affine = dynamic_cast<const AffineModel*>(&model))
    return generate(*affine, x0, options, guidance, observer);
  check_unconditional(model, guidance.condition);
  const auto deterministic = ode_sampler_names();
  const bool ode_solver = std::find(deterministic.begin(), deterministic.end(), options.solver) != deterministic.end();
  if (!model.has_probability_flow())
    SDEGEN_CHECK(!ode_solver, "the '", model.kind(), "' model has no probability-flow ODE (its marginal score is ",
                 "unknown); sample it with euler-maruyama, which uses its learned diffusion");
  else
    SDEGEN_CHECK(options.diffusion.is_zero(), "the '", model.kind(),
                 "' model is deterministic; it samples with zero diffusion, not sigma = ",
                 diffusion_name(options.diffusion));
  return sample_sde(*model.sde(options.diffusion), x0, options, observer);
}

torch::Tensor sample_model_prior(const GenerativeModel& model, int64_t n, const c10::optional<torch::Device>& device,
                                 const c10::optional<torch::Generator>& generator) {
  const auto* cm = dynamic_cast<const ConsistencyModel*>(&model);
  const double prior_std = cm ? cm->prior_std() : model.sde(DiffusionSpec{})->prior_std();
  std::vector<int64_t> sizes{n};
  for (const int64_t s : model.shape()) sizes.push_back(s);
  const auto dtype = model.parameters().empty() ? torch::kDouble : model.parameters().front().scalar_type();
  // Drawn on the CPU, then moved: a seed gives the same prior points on every device.
  const torch::Tensor z = prior_std * torch::randn(sizes, generator, torch::TensorOptions(dtype));
  return z.to(device ? *device : device_of(model));
}

}  // namespace sdegen
