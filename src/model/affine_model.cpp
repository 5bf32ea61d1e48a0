#include "sdegen/model/affine_model.h"

#include <cmath>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/shard.h"
#include "sdegen/core/tensor.h"
#include "sdegen/objective/coupling.h"
#include "sdegen/process/loglinear.h"

namespace sdegen {

AffineModelOptions affine_model_defaults(const std::string& kind, int64_t dim) {
  check_name("affine model", kind, {"flow", "diffusion", "score", "vdm"});
  AffineModelOptions o;
  o.kind = kind;
  o.net = to_json(MlpOptions(dim));
  if (kind == "flow") {
    o.schedule = "linear";
    o.prediction = Prediction::Velocity;
  } else if (kind == "diffusion") {
    o.schedule = "vp";
    o.prediction = Prediction::Noise;
  } else if (kind == "score") {
    o.schedule = "ve";
    o.prediction = Prediction::Noise;  // the score is -eps_hat / b; b^2-weighted DSM = eps regression
  } else {
    o.schedule = "loglinear";
    o.prediction = Prediction::Noise;
    o.weighting = Weighting::Elbo;
    o.time_sampling = "antithetic";
    o.learn_endpoints = true;
  }
  return o;
}

namespace {

// The range of t used for training and for the ELBO: an end where a or b vanishes makes some
// integrands singular, so it is moved in by t_epsilon.
std::pair<double, double> range_of(const AffineSchedule& s, double eps) {
  return {s.a(0.0) == 0.0 ? eps : 0.0, s.b(1.0) == 0.0 ? 1.0 - eps : 1.0};
}

}  // namespace

AffineModel::AffineModel(AffineModelOptions o, NetworkPtr net) : options_(std::move(o)) {
  if (net) options_.net = net->config();
  check_name("time sampling", options_.time_sampling, {"uniform", "antithetic", "lognormal"});
  SDEGEN_CHECK(options_.t_epsilon > 0 && options_.t_epsilon < 0.5, "t_epsilon must lie in (0, 0.5), got ",
               options_.t_epsilon);
  SDEGEN_CHECK(options_.delta > 0, "initial delta must be positive, got ", options_.delta);
  SDEGEN_CHECK(options_.schedule_knots >= 1, "schedule_knots must be >= 1 (1: lambda linear in t), got ",
               options_.schedule_knots);
  schedule_ = learns_schedule() ? make_learnable_schedule()
                                : make_schedule(options_.schedule, options_.schedule_options);
  range_ = range_of(*schedule_, options_.t_epsilon);
  net_ = register_module("net", net ? std::move(net) : make_network(options_.net));
  mlp_ = std::dynamic_pointer_cast<MlpImpl>(net_);
  shape_ = net_->shape();
  if (mlp_)
    SDEGEN_CHECK(mlp_->options.resolved_out_dim() == mlp_->options.in_dim(), "the '", options_.kind,
                 "' model's MLP must output its input's size ", mlp_->options.in_dim(), ", got out_dim ",
                 mlp_->options.out_dim());
  SDEGEN_CHECK(options_.p_uncond >= 0 && options_.p_uncond <= 1, "p_uncond must lie in [0, 1], got ",
               options_.p_uncond);
  log_delta_ = register_parameter("log_delta", torch::full({}, std::log(options_.delta), torch::kDouble));
  check_name("dtype", options_.dtype, {"float32", "float64"});
  SDEGEN_CHECK(!options_.precondition || options_.prediction == Prediction::Data,
               "EDM preconditioning wraps a data prediction; got prediction '", prediction_name(options_.prediction),
               "'");
  SDEGEN_CHECK(options_.sigma_data > 0, "sigma_data must be positive, got ", options_.sigma_data);
  check_coupling(coupling());
  field_ = std::make_shared<PredictionField>(
      native_fn(Condition{}), options_.prediction, schedule_,
      mlp_ ? raw_prediction(Mlp(mlp_), schedule_, options_.precondition, options_.sigma_data) : RawPredictionFactory{});
  to(options_.dtype == "float32" ? torch::kFloat : torch::kDouble);
}

PredictionFn AffineModel::native_fn(const Condition& condition) const {
  const NetworkPtr net = net_;
  const SchedulePtr schedule = schedule_;
  const bool precondition = options_.precondition;
  const double sigma_data = options_.sigma_data;
  return [net, schedule, precondition, sigma_data, condition](const torch::Tensor& x, const torch::Tensor& t) {
    if (!precondition) return net->forward(x, t, condition);
    return edm_denoiser(*net, *schedule, sigma_data, x, t, condition);
  };
}

PredictionFn AffineModel::guided_fn(const Condition& condition, double w) const {
  if (condition.empty()) return native_fn(Condition{});
  SDEGEN_CHECK(num_classes() > 0 || condition_dim() > 0, "guidance needs a conditional model; this '", kind(),
               "' model is unconditional");
  SDEGEN_CHECK(std::isfinite(w), "guidance weight must be finite, got ", w);
  // Without label dropout the null label was never trained: guidance would mix in noise.
  SDEGEN_CHECK(w == 1.0 || options_.p_uncond > 0, "this model was trained without label dropout (p_uncond 0; a ",
               "reflowed student learns its teacher's guided flow), so it has no unconditional map to guide by; ",
               "use guidance 1, got ", w);
  // w = 0 and w = 1 are single evaluations (exactly the unconditional and the conditional model).
  if (w == 0.0) return native_fn(Condition{});
  // The observation is checked once here, not in every evaluation of the field.
  const Condition checked = condition.vector_finite ? condition : checked_finite("guidance", condition);
  if (w == 1.0) return native_fn(checked);
  const PredictionFn both = native_fn(with_null_rows(checked));
  return [both, w](const torch::Tensor& x, const torch::Tensor& t) {
    // One batched call: the conditional rows, then the same points with the null label.
    const int64_t n = x.size(0);
    const torch::Tensor out = both(torch::cat({x, x}), t.dim() == 0 ? t : torch::cat({t, t}));
    const torch::Tensor c = out.narrow(0, 0, n), u = out.narrow(0, n, n);
    return u + w * (c - u);
  };
}

std::shared_ptr<const MarginalField> AffineModel::guided_field(const Condition& condition, double w) const {
  const PredictionFn fn = guided_fn(condition, w);  // checks condition and w
  if (condition.empty() || w == 0.0) return field_;
  return std::make_shared<PredictionField>(fn, options_.prediction, schedule_);
}

torch::Tensor AffineModel::guided_velocity(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition,
                                           double w) const {
  SDEGEN_CHECK(t.dim() == 1 && t.size(0) == x.size(0), "guided_velocity: t must be [batch] = [", x.size(0), "], got ",
               t.sizes());
  const torch::Tensor tt = t.to(x.scalar_type());
  const torch::Tensor native = guided_fn(condition, w)(x, tt);
  return convert(native, options_.prediction, Prediction::Velocity, x, schedule_->coefficients(tt).like(x));
}

// The loglinear schedule on tensors this model owns: the learned ones are registered as
// parameters (so the optimiser, the weight average and checkpoints see them), the rest are
// constants.
SchedulePtr AffineModel::make_learnable_schedule() {
  const AffineModelOptions& o = options_;
  SDEGEN_CHECK(o.kind == "vdm", "only the vdm model learns its schedule; the '", o.kind,
               "' model needs learn_endpoints = false and schedule_knots = 1");
  SDEGEN_CHECK(o.schedule == "loglinear", "a learned schedule is loglinear; got schedule '", o.schedule,
               "' with learn_endpoints = ", o.learn_endpoints ? "true" : "false", " and schedule_knots = ",
               o.schedule_knots);
  SDEGEN_CHECK(o.weighting == Weighting::Elbo,
               "a learned schedule is trained by the ELBO: weighting must be 'elbo', got '",
               weighting_name(o.weighting), "'");
  const double l0 = o.schedule_options.lambda_min, l1 = o.schedule_options.lambda_max;
  SDEGEN_CHECK(std::isfinite(l0) && std::isfinite(l1) && l0 < l1, "vdm needs finite lambda_min < lambda_max, got ",
               l0, " and ", l1);
  LogLinearParameters p = loglinear_parameters(l0, l1, o.schedule_knots);
  if (o.learn_endpoints) {
    p.lambda_0 = register_parameter("lambda_0", p.lambda_0);
    p.lambda_1 = register_parameter("lambda_1", p.lambda_1);
  }
  if (o.schedule_knots > 1) p.shape_logits = register_parameter("schedule_logits", p.shape_logits);
  auto schedule = std::make_shared<LogLinearSchedule>(p);
  learned_ = schedule.get();
  return schedule;
}

torch::Tensor edm_denoiser(NetworkImpl& net, const AffineSchedule& schedule, double sigma_data, const torch::Tensor& x,
                           const torch::Tensor& t, const Condition& condition) {
  const ScheduleCoefficients c = schedule.coefficients(t).like(x);
  const torch::Tensor z = x / c.a;  // the data-scale state: y + sigma eps
  const torch::Tensor sigma = c.b / c.a, s2 = sigma * sigma + sigma_data * sigma_data;
  const torch::Tensor c_in = torch::rsqrt(s2), c_skip = sigma_data * sigma_data / s2;
  const torch::Tensor c_out = sigma * sigma_data * torch::rsqrt(s2);
  return c_skip * z + c_out * net.forward(c_in * z, t, condition);
}

torch::Tensor AffineModel::predict_native(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition) {
  return native_fn(condition)(x, t);
}

void AffineModel::check_data(const torch::Tensor& y) const {
  const bool ok = y.defined() && y.dim() == static_cast<int64_t>(shape_.size()) + 1 &&
                  y.sizes().slice(1) == c10::IntArrayRef(shape_);
  if (!ok) {
    std::ostringstream want, got;
    want << "[batch";
    for (const int64_t s : shape_) want << ", " << s;
    want << "]";
    if (y.defined()) got << y.sizes(); else got << "undefined";
    throw InvalidArgument(detail::concat("the '", kind(), "' model expects data of shape ", want.str(), ", got ",
                                         got.str()));
  }
  const auto dtype = options_.dtype == "float32" ? torch::kFloat : torch::kDouble;
  SDEGEN_CHECK(y.scalar_type() == dtype, "the '", kind(), "' model computes in ", options_.dtype, "; got data of type ",
               y.scalar_type());
}

Condition AffineModel::drop_labels(const Condition& condition, int64_t batch) const {
  if (condition.empty() || options_.p_uncond == 0.0) return condition;
  const torch::Tensor drop = batch_rand(batch, torch::TensorOptions(torch::kDouble)) < options_.p_uncond;
  return drop_rows(condition, drop);
}

torch::Tensor AffineModel::sample_times(int64_t n, const torch::TensorOptions& to) const {
  const auto [lo, hi] = time_range();
  torch::Tensor u;
  if (options_.time_sampling == "antithetic") {
    // Low-discrepancy: one uniform offset, then evenly spaced (VDM).
    u = batch_stratified(n, to);
  } else if (options_.time_sampling == "lognormal") {
    // EDM: log sigma ~ N(P_mean, P_std^2) with sigma = b / a, i.e. lambda = -2 log sigma.
    const torch::Tensor log_sigma = options_.lognormal_mean + options_.lognormal_std * batch_randn(n, to);
    return schedule_->inverse_lambda(-2.0 * log_sigma).clamp(lo, hi);
  } else {
    u = batch_rand(n, to);
  }
  return lo + (hi - lo) * u;
}

AffineLoss AffineModel::drift_terms(const torch::Tensor& y, const torch::Tensor& t, const torch::Tensor& eps,
                                    const Condition& condition) {
  // x_t = a(t) y + b(t) eps, the network's input: a and b depend on the schedule's parameters.
  const ScheduleCoefficients c = schedule_->coefficients(t).like(y);
  const torch::Tensor x = c.a * y + c.b * eps;
  // The integrand 1/2 lambda'(t) |eps - eps_hat|^2 (in the native space), and its weighted loss.
  return affine_loss({y, eps, t, predict_native(x, t, condition), options_.prediction}, *schedule_, options_.weighting,
                     {options_.sigma_data});
}

void AffineModel::check_learned_endpoints() const {
  if (!learned_) return;
  // An optimiser step could in principle carry l1 below l0, which would make lambda' < 0.
  const double l0 = learned_->lambda_0(), l1 = learned_->lambda_1();
  if (!(l0 < l1))
    throw NumericError(detail::concat("vdm: the learned schedule's endpoints crossed (lambda(0) = ", l0,
                                      ", lambda(1) = ", l1, "); lower the learning rate"));
}

ElboTerms AffineModel::end_terms(const torch::Tensor& y) const {
  const auto [lo, hi] = time_range();
  const torch::Tensor t_lo = torch::full({}, lo, y.options()), t_hi = torch::full({}, hi, y.options());
  ElboTerms terms;
  // Reconstruction at the data end hi: x = a y + b eps, p(y | x) = N(y; x / a, delta^2 I), so x / a
  // is y plus noise of std b / a (= exp(-l1 / 2) for loglinear at hi = 1).
  const torch::Tensor delta = torch::exp(log_delta_).to(y.options());
  terms.reconstruction = expected_reconstruction(y, y, schedule_->b(t_hi) / schedule_->a(t_hi), delta);
  // Prior: KL(q_lo(. | y) = N(a y, b^2 I) || p_0), not zero where a(lo) != 0 (loglinear: a^2 = sigmoid(l0)).
  terms.prior = gaussian_kl_to_prior(schedule_->a(t_lo) * y, schedule_->b(t_lo), schedule_->prior_std());
  terms.drift = torch::zeros({y.size(0)}, y.options());
  return terms;
}

CouplingOptions AffineModel::coupling() const {
  CouplingOptions c;
  c.kind = options_.coupling;
  c.epsilon = options_.coupling_epsilon;
  return c;
}

torch::Tensor AffineModel::prior_pairs(const torch::Tensor& y, const Condition& condition) const {
  if (!condition.source.defined()) return couple(y, batch_randn_like(y), condition.labels, coupling());
  SDEGEN_CHECK(condition.source.sizes() == y.sizes() && condition.source.scalar_type() == y.scalar_type(),
               "the '", kind(), "' model's given prior points must match the data: ", y.sizes(), " ",
               y.scalar_type(), ", got ", condition.source.sizes(), " ", condition.source.scalar_type());
  return condition.source;
}

torch::Tensor AffineModel::loss(const torch::Tensor& y, const Condition& condition) {
  check_data(y);
  check_learned_endpoints();
  const torch::Tensor t = sample_times(y.size(0), y.options());
  const torch::Tensor eps = prior_pairs(y, condition);
  torch::Tensor total = drift_terms(y, t, eps, drop_labels(condition, y.size(0))).loss.mean();
  if (options_.weighting == Weighting::Elbo) {
    // The drift term of the negative ELBO: an unbiased estimate of its integral over the time range.
    const auto [lo, hi] = time_range();
    total = (hi - lo) * total;
  }
  // The end terms train delta and, for vdm, the endpoints (l1 through the reconstruction, l0
  // through the prior); they do not touch the network.
  const ElboTerms ends = end_terms(y);
  return total - ends.reconstruction.mean() + ends.prior.mean();
}

ElboTerms AffineModel::elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition) {
  check_data(y);
  const auto [lo, hi] = time_range();
  const int64_t n = y.size(0);
  ElboTerms terms = end_terms(y);
  for (int64_t k = 0; k < time_samples; ++k) {
    const torch::Tensor t = lo + (hi - lo) * batch_rand(n, y.options());
    const torch::Tensor eps = batch_randn_like(y);
    terms.drift = terms.drift + (hi - lo) * drift_terms(y, t, eps, condition).elbo_integrand;
  }
  if (time_samples > 0) terms.drift = terms.drift / static_cast<double>(time_samples);
  return terms;
}

std::shared_ptr<const GenerativeSde> AffineModel::sde(const DiffusionSpec& diffusion) const {
  return std::make_shared<MarginalSde>(field_, diffusion);
}

nlohmann::json AffineModel::config() const { return to_json(options_); }

nlohmann::json to_json(const AffineModelOptions& options_) {
  nlohmann::json j = {{"kind", options_.kind},
                      {"schedule", options_.schedule},
                      {"prediction", prediction_name(options_.prediction)},
                      {"weighting", weighting_name(options_.weighting)},
                      {"time_sampling", options_.time_sampling},
                      {"t_epsilon", options_.t_epsilon},
                      {"b_min", options_.schedule_options.b_min},
                      {"delta", options_.delta},
                      {"precondition", options_.precondition},
                      {"sigma_data", options_.sigma_data},
                      {"p_uncond", options_.p_uncond},
                      {"coupling", options_.coupling},
                      {"coupling_epsilon", options_.coupling_epsilon},
                      {"dtype", options_.dtype},
                      {"net", options_.net}};
  // Only vdm learns its schedule; its config also says how, so a checkpoint rebuilds it.
  if (options_.kind == "vdm") {
    j["learn_endpoints"] = options_.learn_endpoints;
    j["lambda_min"] = options_.schedule_options.lambda_min;
    j["lambda_max"] = options_.schedule_options.lambda_max;
    j["schedule_knots"] = options_.schedule_knots;
  }
  return j;
}

}  // namespace sdegen
