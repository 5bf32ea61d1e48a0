// The stable API (sdegen.h) over the library's loading, sampling and likelihood.
#include "sdegen/sdegen.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <random>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/error.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/image_evaluate.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/fast_sampler.h"

namespace sdegen {

namespace {

// A model with condition columns trained without condition dropout (a reflowed student) learned no
// unconditional model: its null condition was never trained, so a draw or density without an
// observation would be noise.
void check_unconditional_map(const TrainedModel& t, const char* who) {
  SDEGEN_CHECK(t.model->condition_dim() == 0 || learned_unconditional_map(*t.model), who, ": the model was trained ",
               "without condition dropout (a reflowed student), so it has no unconditional model; give the ",
               "observation (", join(t.condition_columns), ")");
}

}  // namespace

struct Model::State {
  TrainedModel trained;
  std::string run_dir;
};

Model::Model(std::shared_ptr<const State> state) : state_(std::move(state)) {}

Model Model::load(const std::string& run_dir, const std::string& device) {
  const torch::Device on = parse_device(device);  // refused by name before anything is read
  auto state = std::make_shared<State>();
  state->trained = load_trained_model(run_dir);
  state->run_dir = run_dir;
  SDEGEN_CHECK(state->trained.model->kind() != "autoencoder", "'", run_dir,
               "' holds an autoencoder, which maps images to latents and samples nothing; load a model trained on "
               "its latents (sdegen train --latent ", run_dir, ")");
  state->trained.to(on);
  return Model(std::move(state));
}

std::string Model::device() const { return device_of(*state_->trained.model).str(); }

std::string Model::kind() const { return state_->trained.model->kind(); }

std::vector<int64_t> Model::shape() const { return state_->trained.image_shape(); }

int64_t Model::num_classes() const { return state_->trained.model->num_classes(); }

bool Model::is_image() const { return !state_->trained.images.is_null(); }

std::vector<std::string> Model::columns() const { return state_->trained.columns; }

std::vector<std::string> Model::condition_columns() const { return state_->trained.condition_columns; }

struct ChunkSampler::State {
  std::shared_ptr<const Model::State> model;  // keeps the weights the sampler reads alive
  std::unique_ptr<FastSampler> sampler;
  std::mt19937_64 rng;
  std::normal_distribution<double> normal;
  std::vector<double> mean, std, condition_mean, condition_std, z, x;
};

ChunkSampler::ChunkSampler(std::shared_ptr<State> state) : state_(std::move(state)) {}

int64_t ChunkSampler::dim() const { return state_->sampler->dim(); }

int64_t ChunkSampler::condition_dim() const { return state_->sampler->condition_dim(); }

int ChunkSampler::evaluations() const { return static_cast<int>(state_->sampler->evaluations()); }

void ChunkSampler::sample(const double* observation, double* out) {
  State& s = *state_;
  const int64_t d = dim(), k = condition_dim();
  if (observation != nullptr)
    for (int64_t j = 0; j < k; ++j) {
      SDEGEN_CHECK(std::isfinite(observation[j]), "ChunkSampler: observation ", j, " is ", observation[j],
                   "; it must be finite");
      s.z[j] = (observation[j] - s.condition_mean[j]) / s.condition_std[j];
    }
  const double prior_std = s.sampler->prior_std();
  for (int64_t j = 0; j < d; ++j) s.x[j] = prior_std * s.normal(s.rng);
  s.sampler->sample(s.x.data(), observation != nullptr && k > 0 ? s.z.data() : nullptr, 1, s.x.data());
  for (int64_t j = 0; j < d; ++j) out[j] = s.mean[j] + s.std[j] * s.x[j];
}

ChunkSampler Model::fast_sampler(const FastSampleOptions& options) const {
  const TrainedModel& t = state_->trained;
  SDEGEN_CHECK(!is_image(), "fast_sampler: the fast sampler is for tables; this model draws images");
  const auto* affine = dynamic_cast<const AffineModel*>(t.model.get());
  SDEGEN_CHECK(affine != nullptr, "fast_sampler: the '", t.model->kind(), "' model is not a flow; the fast sampler "
               "integrates a flow's velocity (train --model flow)");
  SDEGEN_CHECK(device_of(*t.model).is_cpu(), "fast_sampler: the model is on ", device(), "; the fast sampler reads ",
               "its weights as raw host buffers, so load the model with device \"cpu\"");
  FastSamplerOptions o;
  o.solver = options.solver;
  o.steps = options.steps;
  o.guidance = options.guidance;
  auto state = std::make_shared<ChunkSampler::State>();
  state->model = state_;
  state->sampler = std::make_unique<FastSampler>(*affine, o);
  state->rng.seed(options.seed);
  auto values = [](const torch::Tensor& v) {
    const torch::Tensor c = v.to(torch::kDouble).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  };
  state->mean = values(t.standardizer.mean), state->std = values(t.standardizer.std);
  if (affine->condition_dim() > 0) {
    state->condition_mean = values(t.condition_standardizer.mean);
    state->condition_std = values(t.condition_standardizer.std);
  }
  state->z.assign(static_cast<size_t>(affine->condition_dim()), 0.0);
  state->x.assign(static_cast<size_t>(affine->dim()), 0.0);
  return ChunkSampler(std::move(state));
}

torch::Tensor Model::sample(int64_t n, const SampleOptions& options) const {
  const TrainedModel& t = state_->trained;
  const GenerativeModel& model = *t.model;
  SDEGEN_CHECK(n >= 1, "sample: n must be >= 1, got ", n);
  const int64_t classes = model.num_classes();
  SDEGEN_CHECK(options.label == -1 || (options.label >= 0 && options.label < classes),
               "sample: label must be -1 (unconditional) or a class in [0, ", classes, "), got ", options.label);
  SDEGEN_CHECK(classes > 0 || options.label == -1, "sample: the model is unconditional; it takes no label");
  SDEGEN_CHECK(std::isfinite(options.guidance), "sample: the guidance weight must be finite, got ", options.guidance);
  SamplerOptions s;
  s.solver = options.solver;
  s.steps = options.steps;
  torch::NoGradGuard no_grad;
  torch::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const torch::Tensor x0 = sample_model_prior(model, n, c10::nullopt, generator);  // drawn on the CPU, moved
  SDEGEN_CHECK(options.condition.empty() || model.condition_dim() > 0,
               "sample: the model takes no condition (it was trained without --condition-columns)");
  Guidance guidance;
  if (classes > 0 && options.label >= 0) {
    guidance.condition = Condition(torch::full({n}, options.label, torch::kLong));
    guidance.weight = options.guidance;
  }
  if (!options.condition.empty()) {
    guidance.condition.vector = t.condition_rows(options.condition, n);
    guidance.weight = options.guidance;
  } else {
    check_unconditional_map(t, "sample");
  }
  const Solution sol = generate(model, x0, s, guidance);
  sol.check();
  if (t.latent) return t.latent->decode(sol.x).to(torch::kCPU, torch::kFloat);
  if (is_image()) return sol.x.to(torch::kCPU, torch::kFloat);
  return t.standardizer.inverse(sol.x.to(torch::kCPU, torch::kDouble));
}

torch::Tensor Model::log_likelihood(const torch::Tensor& points) const { return log_likelihood(points, {}); }

torch::Tensor Model::log_likelihood(const torch::Tensor& points, const torch::Tensor& observations) const {
  const TrainedModel& t = state_->trained;
  const GenerativeModel& model = *t.model;
  SDEGEN_CHECK(!t.latent, "log_likelihood: a latent model's density is over its autoencoder's latents, not pixels");
  SDEGEN_CHECK(model.has_probability_flow() && model.has_elbo(), "log_likelihood: the '", model.kind(),
               "' model has no probability-flow ODE to give a likelihood");
  const std::vector<int64_t> s = model.shape();
  SDEGEN_CHECK(points.dim() == static_cast<int64_t>(s.size()) + 1 && points.sizes().slice(1) == c10::IntArrayRef(s),
               "log_likelihood: points must have shape [n, *shape] with shape ", c10::IntArrayRef(s), ", got ",
               points.sizes());
  SDEGEN_CHECK(points.is_floating_point() && points.isfinite().all().item<bool>(),
               "log_likelihood: points must be finite floating-point values");
  const torch::Device on = device_of(model);
  Condition given;
  if (observations.defined()) {
    const int64_t k = model.condition_dim();
    SDEGEN_CHECK(k > 0, "log_likelihood: the model takes no observations (it was trained without --condition-columns)");
    SDEGEN_CHECK(observations.dim() == 2 && observations.size(0) == points.size(0) && observations.size(1) == k,
                 "log_likelihood: observations must be [n, ", k, "] for n = ", points.size(0), " points (",
                 join(t.condition_columns), "), got ", observations.sizes());
    SDEGEN_CHECK(observations.is_floating_point() && observations.isfinite().all().item<bool>(),
                 "log_likelihood: observations must be finite floating-point values");
    given.vector = t.condition_standardizer.transform(observations.to(on, torch::kDouble));
    given.vector_finite = true;  // checked above
  } else {
    check_unconditional_map(t, "log_likelihood");
  }
  LikelihoodOptions o;
  o.exact_divergence = model.dim() <= 16;  // Hutchinson's unbiased estimate above (as sdegen eval)
  torch::NoGradGuard no_grad;
  const LikelihoodResult r =
      is_image() ? model_log_likelihood(model, points.to(on, model.parameters().front().scalar_type()), o, given)
                 : model_log_likelihood(model, t.standardizer, points.to(on, torch::kDouble), o, given);
  const int64_t untrusted = untrusted_points(model, r).sum().item<int64_t>();
  if (untrusted > 0)
    throw NumericError(detail::concat("log_likelihood: the probability-flow solve failed or ran away (beyond ",
                                      kDivergedPriorRadius, " prior standard deviations) for ", untrusted, " of ",
                                      points.size(0), " points; their log-likelihood cannot be trusted"));
  return r.log_prob.to(torch::kCPU, torch::kDouble);
}

}  // namespace sdegen
