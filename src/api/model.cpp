// The stable API (sdegen.h) over the library's loading, sampling and likelihood.
#include "sdegen/sdegen.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/model/factory.h"

namespace sdegen {

struct Model::State {
  TrainedModel trained;
  std::string run_dir;
};

Model::Model(std::shared_ptr<const State> state) : state_(std::move(state)) {}

Model Model::load(const std::string& run_dir) {
  auto state = std::make_shared<State>();
  state->trained = load_trained_model(run_dir);
  state->run_dir = run_dir;
  SDEGEN_CHECK(state->trained.model->kind() != "autoencoder", "'", run_dir,
               "' holds an autoencoder, which maps images to latents and samples nothing; load a model trained on "
               "its latents (sdegen train --latent ", run_dir, ")");
  return Model(std::move(state));
}

std::string Model::kind() const { return state_->trained.model->kind(); }

std::vector<int64_t> Model::shape() const { return state_->trained.image_shape(); }

int64_t Model::num_classes() const { return state_->trained.model->num_classes(); }

bool Model::is_image() const { return !state_->trained.images.is_null(); }

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
  const torch::Tensor x0 = sample_model_prior(model, n, torch::kCPU, generator);
  Guidance guidance;
  if (classes > 0 && options.label >= 0) {
    guidance.condition = Condition(torch::full({n}, options.label, torch::kLong));
    guidance.weight = options.guidance;
  }
  const Solution sol = generate(model, x0, s, guidance);
  sol.check();
  if (t.latent) return t.latent->decode(sol.x).to(torch::kFloat);
  if (is_image()) return sol.x.to(torch::kFloat);
  return t.standardizer.inverse(sol.x).to(torch::kDouble);
}

torch::Tensor Model::log_likelihood(const torch::Tensor& points) const {
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
  LikelihoodOptions o;
  o.exact_divergence = model.dim() <= 16;  // Hutchinson's unbiased estimate above (as sdegen eval)
  torch::NoGradGuard no_grad;
  const LikelihoodResult r =
      is_image() ? model_log_likelihood(model, points.to(model.parameters().front().scalar_type()), o)
                 : model_log_likelihood(model, t.standardizer, points.to(torch::kDouble), o);
  const int64_t untrusted = untrusted_points(model, r).sum().item<int64_t>();
  if (untrusted > 0)
    throw NumericError(detail::concat("log_likelihood: the probability-flow solve failed or ran away (beyond ",
                                      kDivergedPriorRadius, " prior standard deviations) for ", untrusted, " of ",
                                      points.size(0), " points; their log-likelihood cannot be trusted"));
  return r.log_prob.to(torch::kDouble);
}

}  // namespace sdegen
