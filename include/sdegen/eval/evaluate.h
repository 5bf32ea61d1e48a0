#pragma once
// Evaluation of a trained model against data, in data units: the log-likelihood through the
// probability-flow ODE, the ELBO with its standard error and its three terms, sample distances
// beside the distance between two data samples of the same size, and the true average log
// density where the data come from a built-in density.
//
// Data units: models are trained on standardised data z = (y - mean) / std, so every density
// is mapped back with the change of variables log p(y) = log p(z) - sum_j log std_j. In the
// ELBO that constant belongs to the reconstruction term (the only term that is a density of y).
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "sdegen/data/csv_data.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/likelihood.h"
#include "sdegen/model/generative_model.h"
#include "sdegen/model/latent.h"
#include "sdegen/objective/elbo.h"
#include "sdegen/sample/sampler.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/validation.h"

namespace sdegen {

// A trained model as `sdegen train` leaves it: the model with its weights, the standardisation
// of its training data and the data spec it was trained on.
struct TrainedModel {
  ModelPtr model;
  Standardizer standardizer;
  std::string data;  // the --data given to train
  nlohmann::json config;
  // Image models: {"shape": [C, H, W], "classes": [names], "source": ...}; null for vectors
  // (whose standardizer is then set).
  nlohmann::json images;
  // A latent model (model/latent.h): the latent space it learned in, which maps its draws to
  // images; nullptr for models of pixels or vectors.
  std::shared_ptr<LatentSpace> latent;
  // The shape of what the model's samples are shown as: the latent space's images, else the model's.
  std::vector<int64_t> image_shape() const { return latent ? latent->image_shape() : model->shape(); }
  // Tables: the generated columns' names (empty for checkpoints written before they were kept).
  std::vector<std::string> columns;
  // Tables trained with --condition-columns: the conditioning columns' names and their
  // standardisation (model->condition_dim() of them); empty for other models.
  std::vector<std::string> condition_columns;
  Standardizer condition_standardizer;
  // The condition vector of n samples that all observe `values` (data units, in the order of
  // condition_columns), as the model takes it: standardised, [n, k] float64. Refuses a model
  // without a condition vector, a wrong count and a NaN or infinite value, naming the columns.
  torch::Tensor condition_rows(const std::vector<double>& values, int64_t n) const;
  // Moves the model (and a latent model's autoencoder) to `device`; samples then come out there.
  void to(const torch::Device& device);
};
// IoError when run_dir has no checkpoint; the model is in eval mode, with the chosen weights (by
// default the best validated ones, else the average, else the last iterate).
TrainedModel load_trained_model(const std::string& run_dir, Weights weights = Weights::kBest);

// The latent space a latent model's checkpoint embeds (its extra's "latent" and the attachment
// kLatentWeightsFile), or nullptr when `config` (load_checkpoint_config(run_dir)) has none.
constexpr const char* kLatentWeightsFile = "autoencoder.pt";
std::shared_ptr<LatentSpace> checkpoint_latent_space(const std::string& run_dir, const nlohmann::json& config);

// What a model is evaluated on, in data units.
struct EvalData {
  torch::Tensor x;          // [n, d]: the likelihood and ELBO points
  torch::Tensor target;     // [m, d]: what samples are compared with; x when undefined
  torch::Tensor reference;  // [m, d]: a data sample independent of target (the metrics' floor)
  DensityPtr density;       // the true density for built-in specs, nullptr for CSV files
  std::string source;
  // A model trained with --condition-columns: the first `observed` columns of x, target and
  // reference are each row's condition (data units), the rest what the model generates.
  int64_t observed = 0;
};
// A built-in density (or mixture JSON): x (also the target) and the reference are two independent
// draws of n points, seeded by seed.
// A CSV file (*.csv): x is every row (n is not used); the sample metrics use a separate draw:
// the rows shuffled by seed and cut into two halves, the target and the reference.
EvalData make_eval_data(const std::string& spec, int64_t n, uint64_t seed = 0);
// Rows of a table (at least 2) as make_eval_data reads a CSV file.
EvalData eval_data_from_rows(const torch::Tensor& rows, const std::string& source, uint64_t seed = 0);
// A model trained with --condition-columns: the rows of the CSV file `spec`, its condition columns
// then its generated ones (found by name), cut into the target and reference halves as any CSV
// file is, with EvalData::observed set. InvalidArgument naming the problem for a spec that is not
// a CSV file, a checkpoint that does not name its columns, or a file without them.
EvalData conditional_eval_data(const TrainedModel& t, const std::string& spec, uint64_t seed = 0);

// A probability-flow solve that carried a point beyond this many prior standard deviations
// (root mean square over the coordinates) has diverged: the log density it gives (about
// -d * this^2 / 2) is an artifact of the solve, not a figure to average.
constexpr double kDivergedPriorRadius = 100.0;

// The points of a probability-flow solve of `model` whose log-likelihood cannot be trusted, [n]
// bool: set aside by the solve or not finite (l.valid false), or carried beyond
// kDivergedPriorRadius prior standard deviations.
torch::Tensor untrusted_points(const GenerativeModel& model, const LikelihoodResult& l);

// log p(y) per row of y [n, d] (data units) through the model's probability-flow ODE, from its
// data end back to t = 0. An affine model whose data end t1 < 1 (the prediction is singular at
// t = 1) gives log p_{t1}(a(t1) y) + d log a(t1), which neglects the small noise b(t1) left there.
// InvalidArgument for a model without a probability flow (the general sde model).
// A conditional model given a condition (labels and/or condition vectors, one row per point, the
// vectors standardised as the model takes them) gives log p(y | c) through the flow of its
// conditional model (guidance weight 1) at each row's condition; an empty condition gives the
// unconditional model's. Conditions go by autograd's divergence, not the raw path.
LikelihoodResult model_log_likelihood(const GenerativeModel& model, const Standardizer& st,
                                      const torch::Tensor& y, const LikelihoodOptions& options = {},
                                      const Condition& condition = {});
// The same in the model's own units, for points x [n, *model.shape()] in the model's dtype (images:
// pixels scaled to [-1, 1]), with no standardisation to undo.
LikelihoodResult model_log_likelihood(const GenerativeModel& model, const torch::Tensor& x,
                                      const LikelihoodOptions& options = {}, const Condition& condition = {});

// A validator for train() (train/validation.h): "val_nll", the mean negative log-likelihood of the
// validation rows (in the model's own, standardised units) through the model's probability flow,
// dopri5 at rtol = atol = tolerance. A point whose solve fails or diverges makes it +infinity: no
// better than any figure, so such weights are never kept. For models with a probability flow.
Validator likelihood_validator(double tolerance = 1e-4);

// "nll" (likelihood_validator) or "nelbo" (nelbo_validator with validation_time_samples draws);
// InvalidArgument naming the valid ones otherwise.
std::vector<std::string> validation_metric_names();
Validator make_validator(const std::string& metric, int64_t validation_rows);

// The ELBO's terms per row of y (data units), time_samples draws of t per row, in batches, given
// each row's condition where one is given (as model_log_likelihood). Rows whose terms are not
// finite are left as they are, for the caller to count.
ElboTerms model_elbo(GenerativeModel& model, const Standardizer& st, const torch::Tensor& y,
                     int64_t time_samples = 8, int64_t batch = 4096, const Condition& condition = {});

// n samples in data units. An empty solver means dopri5 for a model with a probability flow and
// euler-maruyama (on options.steps steps) otherwise. The Solution is checked (NumericError).
Solution draw_samples(const GenerativeModel& model, const Standardizer& st, int64_t n,
                      SamplerOptions options, const Observer& observer = {});
// The solver draw_samples uses for options.solver (resolves the empty default).
std::string sampler_for(const GenerativeModel& model, const SamplerOptions& options);

// The straightness of the probability flow dx/dt = v(x, t) (Liu et al., math.md):
//   S = int_{t0}^{t1} E |(x_1 - x_0) / (t1 - t0) - v(x_t, t)|^2 dt
// along the flow's own paths from the prior draws x0 [n, *shape], with `steps` rk4 steps on a
// uniform grid and the trapezoid rule over its points (in the model's own, standardised units).
// 0 for paths that are straight lines run at constant speed. A model's flow runs from t = 0 to
// the end of its time range (to 1 - t_eps where its prediction is singular at the data end).
// A class-conditional affine model follows its flow at the rows' labels, guided with weight w.
// Refuses a model without a probability flow (sde); a failed solve throws NumericError.
double flow_straightness(const GenerativeModel& model, const torch::Tensor& x0, int steps = 100,
                         const Condition& condition = {}, double w = 1.0);
double flow_straightness(const VectorField& velocity, const torch::Tensor& x0, double t0, double t1, int steps);

// A distance of the model's samples to the data, beside that of a second data sample.
struct SampleDistance {
  double model = 0.0, reference = 0.0;
};
struct SampleMetrics {
  std::optional<SampleDistance> w1, ks;             // 1-D only
  std::optional<SampleDistance> sliced_w, mmd, energy;  // every dimension
};
// Distances of `samples` and of `reference` to `data` (all [n, d], data units).
SampleMetrics sample_metrics(const torch::Tensor& samples, const torch::Tensor& data,
                             const torch::Tensor& reference, int64_t projections = 256, uint64_t seed = 0);

struct Estimate {
  double mean = 0.0, se = 0.0;  // the mean over points and its standard error
};
Estimate mean_and_se(const torch::Tensor& values);

struct EvalOptions {
  bool likelihood = true;                // where the model has a probability flow
  LikelihoodOptions likelihood_options;  // solver and tolerances; exact_divergence is set below
  bool hutchinson = false;               // Hutchinson's estimator even in low dimension
  int64_t exact_max_dim = 16;            // exact divergence up to this dimension, Hutchinson above
  int64_t probes = 1;                    // Rademacher probes per point (Hutchinson)
  int64_t elbo_time_samples = 8;         // draws of t per point for the ELBO's drift term
  bool samples = true;                   // draw samples and compute the sample metrics
  SamplerOptions sampler = [] { SamplerOptions s; s.solver = ""; s.steps = 100; return s; }();
  double quantization = 0.0;             // bin width in data units: > 0 reports bits per dimension
  int64_t projections = 256;             // sliced Wasserstein directions
  uint64_t seed = 0;                     // seeds torch's global generator at the start
};

struct EvalResult {
  std::string kind, source;
  int64_t dim = 0, n = 0;  // dim: the generated columns
  int64_t observed = 0;    // the condition columns each figure is given (EvalData::observed)
  std::optional<Estimate> log_likelihood;  // nats per point; empty when likelihood_failed > 0
  std::string likelihood_method;           // "exact" or "hutchinson"
  int64_t likelihood_nfe = 0;
  std::optional<double> bits_per_dim, elbo_bits_per_dim;
  std::optional<Estimate> elbo;            // absent when some rows' ELBO is not finite
  Estimate reconstruction, prior, drift;   // over the rows whose ELBO is finite
  // Figures that cannot be trusted are left out above; these say how many points and why.
  int64_t likelihood_failed = 0;  // points whose probability-flow solve failed or diverged
  int64_t elbo_failed = 0;        // rows with a non-finite ELBO
  std::string likelihood_problem; // empty when the likelihood is trusted
  std::optional<Estimate> true_log_likelihood;
  SampleMetrics metrics;
  std::string sampler;
  int64_t sample_nfe = 0;
  std::optional<double> straightness;  // of the probability flow, from n prior draws (flow_straightness)
  torch::Tensor samples;  // [n, d] data units (undefined when samples were not drawn)
  double likelihood_seconds = 0, elbo_seconds = 0, sample_seconds = 0;
};

// A conditional model (data.observed > 0, condition_st: its condition columns' standardisation)
// is evaluated given each row's condition: log p(y | c) and its ELBO on the rows of x; its
// samples are drawn one per reference row, at that row's condition, and compared as joint rows
// [c, y] with the target rows, beside the reference rows themselves (the same conditions, the
// data's own y). A sample of the right conditional distribution then scores like the reference.
EvalResult evaluate(GenerativeModel& model, const Standardizer& st, const EvalData& data,
                    const EvalOptions& options = {}, const Standardizer& condition_st = {});

// Keys: kind, data, dim, n, log_likelihood, log_likelihood_stderr, likelihood_failed_points,
// likelihood_problem, elbo_failed_rows, likelihood_method,
// likelihood_nfe, bits_per_dim, elbo, elbo_stderr, elbo_bits_per_dim, elbo_terms
// {reconstruction, prior, drift}, elbo_terms_stderr, true_log_likelihood,
// true_log_likelihood_stderr, likelihood_gap (true - model), w1, ks, sliced_w, mmd, energy, each
// with <key>_reference, sampler, sample_nfe, straightness, seconds {likelihood, elbo, samples}. A value that
// does not exist for this model or data is null.
nlohmann::json to_json(const EvalResult& result);

}  // namespace sdegen
