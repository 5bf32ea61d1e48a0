#include "sdegen/process/generative.h"

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

torch::Tensor GenerativeSde::sample_prior(int64_t n, torch::IntArrayRef shape,
                                          torch::TensorOptions options) const {
  std::vector<int64_t> full{n};
  full.insert(full.end(), shape.begin(), shape.end());
  return prior_std() * torch::randn(full, options);
}

namespace {

double parse_number(const std::string& text, const std::string& whole) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  SDEGEN_CHECK(used == text.size() && !text.empty(), "cannot read diffusion '", whole,
               "'; expected a number, 'reverse' or 'reverse:SCALE'");
  SDEGEN_CHECK(std::isfinite(v) && v >= 0, "diffusion scale must be finite and >= 0, got '", whole, "'");
  return v;
}

}  // namespace

DiffusionSpec parse_diffusion(const std::string& text) {
  const std::string prefix = "reverse";
  if (text.rfind(prefix, 0) == 0) {
    if (text == prefix) return {DiffusionSpec::Kind::Reverse, 1.0};
    SDEGEN_CHECK(text.size() > prefix.size() + 1 && text[prefix.size()] == ':',
                 "cannot read diffusion '", text, "'; expected a number, 'reverse' or 'reverse:SCALE'");
    return {DiffusionSpec::Kind::Reverse, parse_number(text.substr(prefix.size() + 1), text)};
  }
  return {DiffusionSpec::Kind::Constant, parse_number(text, text)};
}

std::string diffusion_name(const DiffusionSpec& spec) {
  std::ostringstream os;
  if (spec.kind == DiffusionSpec::Kind::Reverse) {
    os << "reverse";
    if (spec.scale != 1.0) os << ':' << spec.scale;
  } else {
    os << spec.scale;
  }
  return os.str();
}

double diffusion_at(const DiffusionSpec& spec, const AffineSchedule& schedule, double t) {
  if (spec.is_zero()) return 0.0;
  if (spec.kind == DiffusionSpec::Kind::Constant) return spec.scale;
  const torch::Tensor tt = torch::tensor(t, torch::kDouble);
  const double b = schedule.b(tt).item<double>();
  // b^2 lambda' = 2 (b^2 a'/a - b b'); where b = 0 (and lambda' = inf) only -2 b b' is left.
  if (b == 0.0) return spec.scale * std::sqrt(-2.0 * schedule.b_db(t));
  const double dl = schedule.dlambda(tt).item<double>();
  return spec.scale * std::sqrt(b * b * dl);
}

RawField with_divergence(RawDivergenceField field, int64_t dim) {
  SDEGEN_CHECK(field != nullptr, "with_divergence needs a field");
  SDEGEN_CHECK(dim > 0, "with_divergence: dimension must be positive, got ", dim);
  auto buffer = std::make_shared<std::vector<double>>();  // x, then v, then div
  return [field = std::move(field), dim, buffer](double t, const double* z, int64_t n, double* dz) {
    const int64_t width = dim + 1, nd = n * dim;
    if (static_cast<int64_t>(buffer->size()) < 2 * nd + n) buffer->resize(static_cast<size_t>(2 * nd + n));
    double *x = buffer->data(), *v = x + nd, *div = v + nd;
    for (int64_t i = 0; i < n; ++i) std::copy(z + i * width, z + i * width + dim, x + i * dim);
    field(t, x, n, v, div);
    for (int64_t i = 0; i < n; ++i) {
      std::copy(v + i * dim, v + (i + 1) * dim, dz + i * width);
      dz[i * width + dim] = div[i];
    }
  };
}

PredictionField::PredictionField(PredictionFn fn, Prediction kind, SchedulePtr schedule, RawPredictionFactory raw)
    : fn_(std::move(fn)), kind_(kind), schedule_(std::move(schedule)), raw_(std::move(raw)) {
  SDEGEN_CHECK(fn_ != nullptr, "PredictionField needs a prediction function");
  SDEGEN_CHECK(schedule_ != nullptr, "PredictionField needs a schedule");
}

torch::Tensor PredictionField::predict(const torch::Tensor& x, double t, Prediction to) const {
  const torch::Tensor tt = time_like(t, x);
  const ScheduleCoefficients c = schedule_->coefficients(tt).like(x);
  return convert(fn_(x, tt), kind_, to, x, c);
}

RawField PredictionField::raw_velocity() const {
  if (!raw_) return {};
  RawPrediction p = raw_();
  if (!p.fn) return {};
  auto buffer = std::make_shared<std::vector<double>>();
  auto coefficients = std::make_shared<RawCoefficients>();  // reused: this runs at every evaluation
  return [p = std::move(p), buffer, coefficients, kind = kind_, schedule = schedule_](double t, const double* x,
                                                                                      int64_t n, double* v) {
    const int64_t nd = n * p.dim;
    if (kind == Prediction::Velocity) {
      p.fn(x, t, n, v);
      return;
    }
    if (static_cast<int64_t>(buffer->size()) < nd) buffer->resize(static_cast<size_t>(nd));
    p.fn(x, t, n, buffer->data());
    RawCoefficients& c = *coefficients;
    schedule->evaluate(&t, 1, c);
    for (int64_t e = 0; e < nd; ++e) v[e] = velocity_of(kind, (*buffer)[e], x[e], c.a[0], c.b[0], c.da[0], c.db[0]);
  };
}

RawDivergenceField PredictionField::raw_velocity_divergence() const {
  if (!raw_) return {};
  RawPrediction p = raw_();
  if (!p.with_trace) return {};
  auto buffer = std::make_shared<std::vector<double>>();  // the prediction, then its trace
  auto coefficients = std::make_shared<RawCoefficients>();
  return [p = std::move(p), buffer, coefficients, kind = kind_, schedule = schedule_](
             double t, const double* x, int64_t n, double* v, double* div) {
    if (kind == Prediction::Velocity) {
      p.with_trace(x, t, n, v, div);
      return;
    }
    const int64_t nd = n * p.dim;
    if (static_cast<int64_t>(buffer->size()) < nd + n) buffer->resize(static_cast<size_t>(nd + n));
    double *pred = buffer->data(), *trace = pred + nd;
    p.with_trace(x, t, n, pred, trace);
    RawCoefficients& c = *coefficients;
    schedule->evaluate(&t, 1, c);
    const double a = c.a[0], b = c.b[0], da = c.da[0], db = c.db[0];
    // The velocity exactly as raw_velocity() computes it, and its divergence from the same
    // conversion: v = k.value pred + k.x x, so div v = k.value tr(d pred/dx) + k.x d.
    for (int64_t e = 0; e < nd; ++e) v[e] = velocity_of(kind, pred[e], x[e], a, b, da, db);
    const VelocityTerms k = velocity_terms(kind, a, b, da, db);
    const double identity = k.x * static_cast<double>(p.dim);
    for (int64_t i = 0; i < n; ++i) div[i] = k.value * trace[i] + identity;
  };
}

std::pair<torch::Tensor, torch::Tensor> MarginalField::velocity_and_score(const torch::Tensor& x,
                                                                          double t) const {
  return {predict(x, t, Prediction::Velocity), predict(x, t, Prediction::Score)};
}

std::pair<torch::Tensor, torch::Tensor> PredictionField::velocity_and_score(const torch::Tensor& x,
                                                                            double t) const {
  const torch::Tensor tt = time_like(t, x);
  const ScheduleCoefficients c = schedule_->coefficients(tt).like(x);
  const DataNoise dn = to_data_noise(fn_(x, tt), kind_, x, c);
  return {from_data_noise(dn, Prediction::Velocity, c), from_data_noise(dn, Prediction::Score, c)};
}

MarginalSde::MarginalSde(std::shared_ptr<const MarginalField> field, DiffusionSpec diffusion)
    : field_(std::move(field)), diffusion_(diffusion) {
  SDEGEN_CHECK(field_ != nullptr, "MarginalSde needs a marginal field");
}

torch::Tensor MarginalSde::drift(const torch::Tensor& x, double t) const {
  const double sigma = diffusion_at(diffusion_, field_->schedule(), t);
  if (sigma == 0.0) return field_->predict(x, t, Prediction::Velocity);
  const auto [v, s] = field_->velocity_and_score(x, t);
  return v + 0.5 * sigma * sigma * s;
}

RawDivergenceField MarginalSde::raw_drift_divergence() const {
  if (!diffusion_.is_zero()) return {};
  return field_->raw_velocity_divergence();
}

torch::Tensor MarginalSde::diffusion(const torch::Tensor& x, double t) const {
  return torch::tensor(diffusion_at(diffusion_, field_->schedule(), t), x.options());
}

}  // namespace sdegen
