// evaluate(): every evaluation of one model on one data set, and its JSON.
#include "sdegen/eval/evaluate.h"

#include <chrono>
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/factory.h"

namespace sdegen {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename T, typename F>
nlohmann::json or_null(const std::optional<T>& v, F f) {
  return v ? nlohmann::json(f(*v)) : nlohmann::json(nullptr);
}

}  // namespace

EvalData eval_data_from_rows(const torch::Tensor& rows, const std::string& source, uint64_t seed) {
  SDEGEN_CHECK(rows.defined() && rows.dim() == 2 && rows.size(0) >= 2, "'", source, "' has ",
               rows.defined() && rows.dim() == 2 ? rows.size(0) : 0,
               " rows; evaluation needs at least 2 (the sample metrics compare two halves)");
  EvalData d;
  d.source = source;
  d.x = rows;
  const int64_t m = rows.size(0) / 2;
  auto gen = at::detail::createCPUGenerator(seed);
  const torch::Tensor perm = at::randperm(rows.size(0), gen, torch::kLong);
  d.target = rows.index_select(0, perm.narrow(0, 0, m));
  d.reference = rows.index_select(0, perm.narrow(0, m, m));
  return d;
}

// The stream of evaluate()'s model draws (core/tensor.h: stream_seed).
constexpr uint64_t kModelStream = 1;

EvalData make_eval_data(const std::string& spec, int64_t n, uint64_t seed) {
  SDEGEN_CHECK(n > 0, "number of evaluation points must be positive, got ", n);
  EvalData d;
  d.source = spec;
  if (is_csv_name(spec)) return eval_data_from_rows(load_csv(spec).x, spec, seed);
  d.density = make_density(spec);
  torch::manual_seed(seed);
  d.x = d.density->sample(n);
  d.reference = d.density->sample(n);
  return d;
}

Estimate mean_and_se(const torch::Tensor& values) {
  const torch::Tensor v = values.detach().to(torch::kDouble).reshape({-1});
  SDEGEN_CHECK(v.numel() > 0, "mean of an empty set of values");
  const double se = v.numel() > 1 ? v.std().item<double>() / std::sqrt(static_cast<double>(v.numel())) : 0.0;
  return {v.mean().item<double>(), se};
}

EvalResult evaluate(GenerativeModel& model, const Standardizer& st, const EvalData& data, const EvalOptions& o,
                    const Standardizer& condition_st) {
  SDEGEN_CHECK(data.x.defined() && data.x.dim() == 2, "evaluation data must be [n, d]");
  const int64_t k = data.observed;
  SDEGEN_CHECK(k == model.condition_dim(), "the '", model.kind(), "' model takes ", model.condition_dim(),
               " condition values; the evaluation data give ", k);
  SDEGEN_CHECK(k == 0 || (condition_st.mean.defined() && condition_st.dim() == k),
               "evaluating a conditional model needs the standardisation of its ", k, " condition columns");
  check_dimension(model.dim(), data.x.size(1) - k, data.source);
  check_dimension(model.dim(), st.dim(), "the standardizer");
  // Rows [c, y] (data units) -> y and the condition the model takes (standardised c), on the
  // model's device; the figures and samples come back to the CPU.
  const torch::Device on = device_of(model);
  const auto split = [&](const torch::Tensor& rows) {
    if (k == 0) return std::make_pair(rows.to(on), Condition());
    Condition c;
    c.vector = condition_st.transform(rows.narrow(1, 0, k).to(on, torch::kDouble));
    return std::make_pair(rows.narrow(1, k, rows.size(1) - k).to(on), checked_finite("the evaluation data", c));
  };
  const auto [y, condition] = split(data.x);
  SDEGEN_CHECK(o.quantization >= 0 && std::isfinite(o.quantization), "quantization must be >= 0, got ", o.quantization);
  // The model's draws (times, noise, prior points) on a stream of their own: seeded like the data
  // of make_eval_data, a sampler's prior draws would replay the data's noise and correlate the
  // samples with the points they are compared with (a consistency model's re-noising drew the
  // reference data's noise and scored below the two-sample floor).
  torch::manual_seed(stream_seed(o.seed, kModelStream));
  model.eval();
  EvalResult r;
  r.kind = model.kind();
  r.source = data.source;
  r.dim = y.size(1);
  r.n = y.size(0);
  r.observed = k;
  const double d = static_cast<double>(r.dim);
  const auto bpd = [&](double ll) { return -(ll + d * std::log(o.quantization)) / (d * std::log(2.0)); };

  if (o.likelihood && model.has_probability_flow()) {
    const auto start = std::chrono::steady_clock::now();
    LikelihoodOptions lo = o.likelihood_options;
    lo.exact_divergence = !o.hutchinson && r.dim <= o.exact_max_dim;
    lo.probes = o.probes;
    r.likelihood_method = lo.exact_divergence ? "exact" : "hutchinson";
    try {
      const LikelihoodResult l = model_log_likelihood(model, st, y, lo, condition);
      r.likelihood_nfe = l.nfe;
      // Per point: set aside by the solve or not finite (l.valid), or carried far outside the
      // prior (a diverged solve whose figure is finite but meaningless). An average that leaves
      // such points out is not the model's likelihood.
      r.likelihood_failed = untrusted_points(model, l).sum().item<int64_t>();
      if (r.likelihood_failed == 0) {
        r.log_likelihood = mean_and_se(l.log_prob);
        if (o.quantization > 0) r.bits_per_dim = bpd(r.log_likelihood->mean);
      } else {
        r.likelihood_problem = detail::concat(r.likelihood_failed, " of ", r.n,
                                              " points' probability-flow solves diverged (a non-finite figure, or "
                                              "carried beyond ", kDivergedPriorRadius, " prior standard deviations)");
      }
    } catch (const NumericError& e) {
      r.likelihood_failed = r.n;
      r.likelihood_problem = std::string("the probability-flow solve failed: ") + e.what();
    }
    r.likelihood_seconds = seconds_since(start);
  }

  auto start = std::chrono::steady_clock::now();
  if (model.has_elbo()) {
    const ElboTerms terms = model_elbo(model, st, y, o.elbo_time_samples, 4096, condition);
    const torch::Tensor total = terms.total();
    const torch::Tensor finite = total.isfinite();
    r.elbo_failed = r.n - finite.sum().item<int64_t>();
    if (r.elbo_failed == 0) r.elbo = mean_and_se(total);
    if (r.elbo_failed < r.n) {
      r.reconstruction = mean_and_se(terms.reconstruction.index({finite}));
      r.prior = mean_and_se(terms.prior.index({finite}));
      r.drift = mean_and_se(terms.drift.index({finite}));
    }
    if (o.quantization > 0 && r.elbo) r.elbo_bits_per_dim = bpd(r.elbo->mean);
    r.elbo_seconds = seconds_since(start);
  }

  if (data.density && data.density->has_log_prob()) {
    SDEGEN_CHECK(k == 0, "a built-in density has no condition columns");
    r.true_log_likelihood = mean_and_se(data.density->log_prob(data.x));
  }

  if (o.samples) {
    start = std::chrono::steady_clock::now();
    r.sampler = sampler_for(model, o.sampler);
    const torch::Tensor target = data.target.defined() ? data.target : data.x;
    const torch::Tensor reference = data.reference.defined() ? data.reference : target;
    if (k == 0) {
      const Solution sol = draw_samples(model, st, target.size(0), o.sampler);
      r.samples = sol.x.to(torch::kCPU);
      r.sample_nfe = sol.nfe;
      if (model.has_probability_flow())
        r.straightness = flow_straightness(model, sample_model_prior(model, target.size(0)));
    } else {
      // One sample per reference row, at its condition, beside that condition.
      const Condition at = split(reference).second;
      SamplerOptions so = o.sampler;
      so.solver = r.sampler;
      torch::NoGradGuard no_grad;
      const torch::Tensor x0 = sample_model_prior(model, reference.size(0));
      Solution sol = generate(model, x0, so, Guidance{at, 1.0});
      sol.check();
      r.samples = torch::cat({reference.narrow(1, 0, k), st.inverse(sol.x.to(torch::kCPU))}, 1);
      r.sample_nfe = sol.nfe;
      if (model.has_probability_flow())
        r.straightness = flow_straightness(model, sample_model_prior(model, reference.size(0)), 100, at, 1.0);
    }
    r.metrics = sample_metrics(r.samples, target, reference, o.projections, o.seed);
    r.sample_seconds = seconds_since(start);
  }
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  const auto mean = [](const Estimate& e) { return e.mean; };
  const auto se = [](const Estimate& e) { return e.se; };
  const auto id = [](double v) { return v; };
  nlohmann::json j;
  j["kind"] = r.kind;
  j["data"] = r.source;
  j["dim"] = r.dim;
  j["n"] = r.n;
  j["log_likelihood"] = or_null(r.log_likelihood, mean);
  j["log_likelihood_stderr"] = or_null(r.log_likelihood, se);
  j["likelihood_failed_points"] = r.likelihood_failed;
  j["likelihood_problem"] = r.likelihood_problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.likelihood_problem);
  j["elbo_failed_rows"] = r.elbo_failed;
  j["likelihood_method"] = r.log_likelihood ? nlohmann::json(r.likelihood_method) : nlohmann::json(nullptr);
  j["likelihood_nfe"] = r.likelihood_nfe;
  j["bits_per_dim"] = or_null(r.bits_per_dim, id);
  j["elbo"] = or_null(r.elbo, mean);
  j["elbo_stderr"] = or_null(r.elbo, se);
  j["elbo_bits_per_dim"] = or_null(r.elbo_bits_per_dim, id);
  j["elbo_terms"] = {{"reconstruction", r.reconstruction.mean}, {"prior", r.prior.mean}, {"drift", r.drift.mean}};
  j["elbo_terms_stderr"] = {{"reconstruction", r.reconstruction.se}, {"prior", r.prior.se}, {"drift", r.drift.se}};
  j["true_log_likelihood"] = or_null(r.true_log_likelihood, mean);
  j["true_log_likelihood_stderr"] = or_null(r.true_log_likelihood, se);
  j["likelihood_gap"] = (r.true_log_likelihood && r.log_likelihood)
                            ? nlohmann::json(r.true_log_likelihood->mean - r.log_likelihood->mean)
                            : nlohmann::json(nullptr);
  const auto metric = [&](const char* key, const std::optional<SampleDistance>& m) {
    j[key] = or_null(m, [](const SampleDistance& s) { return s.model; });
    j[std::string(key) + "_reference"] = or_null(m, [](const SampleDistance& s) { return s.reference; });
  };
  metric("w1", r.metrics.w1);
  metric("ks", r.metrics.ks);
  metric("sliced_w", r.metrics.sliced_w);
  metric("mmd", r.metrics.mmd);
  metric("energy", r.metrics.energy);
  j["sampler"] = r.sampler.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.sampler);
  j["sample_nfe"] = r.sample_nfe;
  j["straightness"] = r.straightness ? nlohmann::json(*r.straightness) : nlohmann::json(nullptr);
  j["seconds"] = {{"likelihood", r.likelihood_seconds}, {"elbo", r.elbo_seconds}, {"samples", r.sample_seconds}};
  return j;
}

}  // namespace sdegen
