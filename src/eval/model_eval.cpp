// The model-level pieces of evaluation: likelihood, ELBO and samples in data units.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/solver/ode.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/recipe.h"

namespace sdegen {
namespace {

double log_jacobian(const Standardizer& st) { return st.std.log().sum().item<double>(); }

void check_points(const GenerativeModel& model, const torch::Tensor& y) {
  SDEGEN_CHECK(y.dim() == 2 && y.size(0) > 0, "evaluation points must be [n, d] with n > 0, got ", y.sizes());
  check_dimension(model.dim(), y.size(1), "the evaluation data");
}

}  // namespace

TrainedModel load_trained_model(const std::string& run_dir, Weights weights) {
  SDEGEN_CHECK(!run_dir.empty(), "no checkpoint given: pass the run directory of sdegen train");
  TrainedModel t;
  t.config = load_checkpoint_config(run_dir);
  t.model = make_model(t.config.at("model"));
  load_weights(run_dir, *t.model, weights);
  t.model->eval();
  const nlohmann::json& extra = t.config.at("extra");
  if (extra.contains("data") && extra.at("data").is_string()) t.data = extra.at("data").get<std::string>();
  if (extra.contains("images")) {  // pixels in [-1, 1], or latents of them: no standardizer
    t.images = extra.at("images");
    t.latent = checkpoint_latent_space(run_dir, t.config);
    SDEGEN_CHECK(!t.latent || t.latent->latent_shape() == t.model->shape(), "checkpoint '", run_dir,
                 "': its model draws ", torch::IntArrayRef(t.model->shape()), " but its latent space decodes ",
                 torch::IntArrayRef(t.latent->latent_shape()));
    return t;
  }
  SDEGEN_CHECK(extra.contains("standardizer"), "checkpoint '", run_dir, "' records no standardizer in its extra");
  t.standardizer = Standardizer::from_json(extra.at("standardizer"), t.model->dim());
  if (extra.contains("data") && extra.at("data").is_string()) t.data = extra.at("data").get<std::string>();
  auto names = [&](const char* key) {
    const nlohmann::json& j = extra.at(key);
    SDEGEN_CHECK(j.is_array() && std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_string(); }),
                 "checkpoint '", run_dir, "': its extra's \"", key, "\" must be a list of column names");
    return j.get<std::vector<std::string>>();
  };
  if (extra.contains("columns")) t.columns = names("columns");
  const int64_t k = t.model->condition_dim();
  SDEGEN_CHECK(k == 0 || (extra.contains("condition_columns") && extra.contains("condition_standardizer")),
               "checkpoint '", run_dir, "': its model takes a condition vector of ", k,
               " values but the checkpoint records no condition columns or their standardizer");
  if (k > 0) {
    t.condition_columns = names("condition_columns");
    SDEGEN_CHECK(static_cast<int64_t>(t.condition_columns.size()) == k, "checkpoint '", run_dir, "' names ",
                 t.condition_columns.size(), " condition columns for a model conditioned on ", k, " values");
    t.condition_standardizer = Standardizer::from_json(extra.at("condition_standardizer"), k);
  }
  return t;
}

torch::Tensor TrainedModel::condition_rows(const std::vector<double>& values, int64_t n) const {
  SDEGEN_CHECK(!condition_columns.empty(), "this model takes no condition vector (it was trained without ",
               "--condition-columns)");
  SDEGEN_CHECK(values.size() == condition_columns.size(), "the model is conditioned on ", condition_columns.size(),
               " values (", join(condition_columns), "), got ", values.size());
  for (size_t j = 0; j < values.size(); ++j)
    SDEGEN_CHECK(std::isfinite(values[j]), "the condition's value of '", condition_columns[j], "' is ", values[j],
                 "; it must be finite");
  const torch::Tensor row = torch::tensor(values, torch::kDouble).unsqueeze(0);
  return condition_standardizer.transform(row).expand({n, row.size(1)}).contiguous();
}

EvalData conditional_eval_data(const TrainedModel& t, const std::string& spec, uint64_t seed) {
  SDEGEN_CHECK(is_csv_name(spec), "--data '", spec, "': a model trained with --condition-columns (",
               join(t.condition_columns), ") is evaluated on a CSV file with those columns");
  SDEGEN_CHECK(!t.columns.empty(), "the checkpoint does not name its generated columns, so they cannot be found in '",
               spec, "'");
  std::vector<std::string> names = t.condition_columns;
  names.insert(names.end(), t.columns.begin(), t.columns.end());
  const std::string note = " (the model generates " + join(t.columns) + " given " + join(t.condition_columns) + ")";
  const torch::Tensor rows = select_columns(load_csv(spec), names, "--data", note);
  EvalData d = eval_data_from_rows(rows, spec, seed);
  d.observed = static_cast<int64_t>(t.condition_columns.size());
  return d;
}

void TrainedModel::to(const torch::Device& device) {
  model->to(device);
  if (latent) latent->autoencoder().to(device);
}

std::shared_ptr<LatentSpace> checkpoint_latent_space(const std::string& run_dir, const nlohmann::json& config) {
  const nlohmann::json& extra = config.at("extra");
  if (!extra.contains("latent")) return nullptr;
  const std::string where = checkpoint_dir(run_dir);
  auto latent = std::make_shared<LatentSpace>(
      LatentSpace::from_stored(extra.at("latent"), read_checkpoint_attachment(run_dir, kLatentWeightsFile), where));
  return latent;
}

LikelihoodResult model_log_likelihood(const GenerativeModel& model, const torch::Tensor& x,
                                      const LikelihoodOptions& options, const Condition& condition) {
  const std::vector<int64_t> shape = model.shape();
  SDEGEN_CHECK(x.dim() >= 2 && x.size(0) > 0 && x.sizes().slice(1).vec() == shape,
               "evaluation points must be [n, *shape] with n > 0 and shape ", torch::IntArrayRef(shape),
               " for this model, got ", x.sizes());
  SDEGEN_CHECK(model.has_probability_flow(), "the '", model.kind(),
               "' model has no probability-flow ODE (its marginal score is unknown), so no exact likelihood; "
               "use its ELBO");
  LikelihoodOptions o = options;
  double scale = 1.0;  // a(t1) where the data end stops short of t = 1
  const auto* affine = dynamic_cast<const AffineModel*>(&model);
  if (affine && affine->options().prediction != Prediction::Velocity) {
    o.t1 = std::min(o.t1, affine->time_range().second);
    scale = affine->schedule().a(o.t1);
  }
  const auto sde = model.sde(DiffusionSpec{});
  LikelihoodResult r;
  if (condition.empty()) {
    const VectorField velocity = [sde](double t, const torch::Tensor& x) { return sde->drift(x, t); };
    r = log_likelihood(velocity, x * scale, sde->prior_std(), o, sde->raw_drift_divergence());
  } else {
    // The conditional model's flow (guidance weight 1) at each row's own condition; no raw path.
    SDEGEN_CHECK(affine != nullptr, "the '", model.kind(), "' model takes no condition");
    const Condition c = condition.vector_finite ? condition : checked_finite("the conditional likelihood", condition);
    for (const torch::Tensor& rows : {c.labels, c.vector})
      SDEGEN_CHECK(!rows.defined() || rows.size(0) == x.size(0), "the condition has ", rows.size(0),
                   " rows for ", x.size(0), " points");
    const std::shared_ptr<const MarginalField> field = affine->guided_field(c, 1.0);
    const VectorField velocity = [field](double t, const torch::Tensor& x) {
      return field->predict(x, t, Prediction::Velocity);
    };
    r = log_likelihood(velocity, x * scale, sde->prior_std(), o);
  }
  r.log_prob = r.log_prob + static_cast<double>(x.numel() / x.size(0)) * std::log(scale);
  return r;
}

LikelihoodResult model_log_likelihood(const GenerativeModel& model, const Standardizer& st,
                                      const torch::Tensor& y, const LikelihoodOptions& options,
                                      const Condition& condition) {
  check_points(model, y);
  LikelihoodResult r = model_log_likelihood(model, st.transform(y.to(torch::kDouble)), options, condition);
  r.log_prob = r.log_prob - log_jacobian(st);
  return r;
}

torch::Tensor untrusted_points(const GenerativeModel& model, const LikelihoodResult& l) {
  const double radius = kDivergedPriorRadius * model.sde(DiffusionSpec{})->prior_std();
  return l.valid.logical_not() | (l.x_prior.flatten(1).square().mean(1).sqrt() > radius);
}

Validator likelihood_validator(double tolerance) {
  SDEGEN_CHECK(tolerance > 0, "likelihood_validator: the tolerance must be positive, got ", tolerance);
  Validator v;
  v.columns = {"val_nll"};
  v.fn = [tolerance](GenerativeModel& model, const torch::Tensor& val,
                     const Condition& condition) -> std::vector<double> {
    SDEGEN_CHECK(condition.empty(), "the likelihood validator (val_nll) is unconditional; validate a ",
                 "conditional model by its ELBO (nelbo)");
    const Standardizer identity{torch::zeros({model.dim()}, torch::kDouble), torch::ones({model.dim()}, torch::kDouble)};
    LikelihoodOptions o;
    o.adaptive = AdaptiveOptions{tolerance, tolerance};
    torch::NoGradGuard no_grad;  // the raw path, where the model has one
    try {
      const LikelihoodResult l = model_log_likelihood(model, identity, val, o);
      if (!untrusted_points(model, l).any().item<bool>()) return {-l.log_prob.mean().item<double>()};
    } catch (const NumericError&) {
    }
    return {std::numeric_limits<double>::infinity()};
  };
  return v;
}

std::vector<std::string> validation_metric_names() { return {"nll", "nelbo"}; }

Validator make_validator(const std::string& metric, int64_t validation_rows) {
  check_name("validation metric", metric, validation_metric_names());
  if (metric == "nll") return likelihood_validator();
  return nelbo_validator(validation_time_samples(validation_rows));
}

ElboTerms model_elbo(GenerativeModel& model, const Standardizer& st, const torch::Tensor& y,
                     int64_t time_samples, int64_t batch, const Condition& condition) {
  check_points(model, y);
  SDEGEN_CHECK(time_samples > 0, "the ELBO needs time_samples > 0, got ", time_samples);
  SDEGEN_CHECK(batch > 0, "batch must be positive, got ", batch);
  const torch::Tensor z = st.transform(y.to(torch::kDouble));
  const Condition c = condition.vector_finite ? condition : checked_finite("the ELBO", condition);
  std::vector<torch::Tensor> rec, prior, drift;
  for (int64_t i = 0; i < z.size(0); i += batch) {
    const int64_t rows = std::min(batch, z.size(0) - i);
    const ElboTerms t = model.elbo(z.narrow(0, i, rows), time_samples, c.empty() ? c : c.slice(i, rows));
    rec.push_back(t.reconstruction.detach()), prior.push_back(t.prior.detach()), drift.push_back(t.drift.detach());
  }
  return {torch::cat(rec) - log_jacobian(st), torch::cat(prior), torch::cat(drift)};
}

std::string sampler_for(const GenerativeModel& model, const SamplerOptions& options) {
  if (!options.solver.empty()) return options.solver;
  if (!model.has_elbo()) return "consistency";  // a map, not an SDE
  return model.has_probability_flow() ? "dopri5" : "euler-maruyama";
}

Solution draw_samples(const GenerativeModel& model, const Standardizer& st, int64_t n, SamplerOptions options,
                      const Observer& observer) {
  SDEGEN_CHECK(n > 0, "number of samples must be positive, got ", n);
  options.solver = sampler_for(model, options);
  torch::NoGradGuard no_grad;
  const torch::Tensor x0 = sample_model_prior(model, n);
  Solution sol;
  if (observer) {
    // generate() has no observer; sample the marginal field (affine) or the free-drift SDE directly.
    const auto* affine = dynamic_cast<const AffineModel*>(&model);
    if (affine) {
      SamplerOptions o = options;
      if (affine->options().prediction != Prediction::Velocity) o.t1 = std::min(o.t1, affine->time_range().second);
      sol = sample(*affine->field(), x0, o, [&](double t, const torch::Tensor& x) { observer(t, st.inverse(x)); });
      if (sol.ok() && o.t1 < 1.0) {
        sol.x = affine->field()->predict(sol.x, o.t1, Prediction::Data);
        observer(1.0, st.inverse(sol.x));
      }
    } else {
      sol = sample_sde(*model.sde(options.diffusion), x0, options,
                       [&](double t, const torch::Tensor& x) { observer(t, st.inverse(x)); });
    }
  } else {
    sol = generate(model, x0, options);
  }
  sol.check();
  sol.x = st.inverse(sol.x);
  return sol;
}

SampleMetrics sample_metrics(const torch::Tensor& samples, const torch::Tensor& data,
                             const torch::Tensor& reference, int64_t projections, uint64_t seed) {
  SDEGEN_CHECK(samples.dim() == 2 && data.dim() == 2 && reference.dim() == 2 && samples.size(1) == data.size(1) &&
                   reference.size(1) == data.size(1),
               "sample metrics need [n, d] samples of one d, got ", samples.sizes(), ", ", data.sizes(), " and ",
               reference.sizes());
  SampleMetrics m;
  const auto both = [&](auto f) { return SampleDistance{f(samples, data), f(reference, data)}; };
  if (data.size(1) == 1) {
    m.w1 = both([](const torch::Tensor& a, const torch::Tensor& b) { return wasserstein1(a, b); });
    m.ks = both([](const torch::Tensor& a, const torch::Tensor& b) { return ks_statistic(a, b); });
  }
  m.sliced_w = both([&](const torch::Tensor& a, const torch::Tensor& b) { return sliced_wasserstein(a, b, projections, seed); });
  // One bandwidth for both, so the two MMDs are on the same scale.
  const double h = median_bandwidth(data, reference);
  m.mmd = both([h](const torch::Tensor& a, const torch::Tensor& b) { return mmd_rbf(a, b, h); });
  m.energy = both([](const torch::Tensor& a, const torch::Tensor& b) { return energy_distance(a, b); });
  return m;
}

double flow_straightness(const VectorField& velocity, const torch::Tensor& x0, double t0, double t1, int steps) {
  SDEGEN_CHECK(steps >= 1 && t0 < t1, "flow_straightness needs steps >= 1 and t0 < t1, got ", steps, " steps on [",
               t0, ", ", t1, "]");
  torch::NoGradGuard no_grad;
  GridOptions g;
  g.t0 = t0;
  g.t1 = t1;
  std::vector<std::pair<double, torch::Tensor>> path;
  const Solution sol = solve_ode(velocity, x0, make_time_grid(steps, g), *make_ode_stepper("rk4"),
                                 [&](double t, const torch::Tensor& x) { path.emplace_back(t, x); });
  sol.check();
  const torch::Tensor chord = (sol.x - x0) / (t1 - t0);
  SDEGEN_CHECK(path.size() == static_cast<size_t>(steps) + 1, "flow_straightness: the observer saw ", path.size(),
               " points of a ", steps, "-step grid");
  // The trapezoid rule over the grid's points: every interior point weighs h, the ends h / 2.
  const double h = (t1 - t0) / steps;
  double total = 0.0;
  for (size_t k = 0; k < path.size(); ++k) {
    const double weight = k == 0 || k + 1 == path.size() ? h / 2 : h;
    const torch::Tensor gap = chord - velocity(path[k].first, path[k].second);
    total += weight * gap.flatten(1).pow(2).sum(1).mean().item<double>();
  }
  return total;
}

double flow_straightness(const GenerativeModel& model, const torch::Tensor& x0, int steps, const Condition& condition,
                         double w) {
  SDEGEN_CHECK(model.has_probability_flow(), "the '", model.kind(), "' model has no probability flow to measure the ",
               "straightness of");
  double t1 = 1.0;
  const auto* affine = dynamic_cast<const AffineModel*>(&model);
  if (affine && affine->options().prediction != Prediction::Velocity) t1 = affine->time_range().second;
  if (!condition.empty()) {
    SDEGEN_CHECK(affine, "flow_straightness: the '", model.kind(), "' model takes no labels");
    const std::shared_ptr<const MarginalField> field = affine->guided_field(condition, w);
    const VectorField velocity = [field](double t, const torch::Tensor& x) {
      return field->predict(x, t, Prediction::Velocity);
    };
    return flow_straightness(velocity, x0, 0.0, t1, steps);
  }
  const std::shared_ptr<const GenerativeSde> flow = model.sde(DiffusionSpec{});
  const VectorField velocity = [flow](double t, const torch::Tensor& x) { return flow->drift(x, t); };
  return flow_straightness(velocity, x0, 0.0, t1, steps);
}

}  // namespace sdegen
