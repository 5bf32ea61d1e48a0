#include "sdegen/eval/oracle.h"

#include "sdegen/core/check.h"

namespace sdegen {

GmmOracle::GmmOracle(GaussianMixture mixture, SchedulePtr schedule)
    : mixture_(std::move(mixture)), schedule_(std::move(schedule)) {
  mixture_.validate();
  SDEGEN_CHECK(schedule_ != nullptr, "GmmOracle needs a schedule");
}

GmmOracle::Moments GmmOracle::moments(double t) const {
  const ScheduleCoefficients c = schedule_->coefficients(torch::tensor(t, torch::kDouble));
  const double a = c.a.item<double>(), b = c.b.item<double>();
  const double da = c.da.item<double>();
  // d(b^2)/dt as 2 b b' from the schedule: where b = 0 and b' is infinite (vp at t = 1) the
  // product is finite, and so is the velocity.
  const double b_db = schedule_->b_db(t);
  const torch::Tensor s2 = mixture_.stds * mixture_.stds;
  return {a * mixture_.means, a * a * s2 + b * b, da * mixture_.means, 2.0 * a * da * s2 + 2.0 * b_db};
}

GaussianMixture GmmOracle::marginal(double t) const {
  const Moments m = moments(t);
  return {mixture_.weights, m.mean, torch::sqrt(m.var)};
}

torch::Tensor GmmOracle::log_prob(const torch::Tensor& x, double t) const {
  return marginal(t).log_prob(x);
}

torch::Tensor GmmOracle::responsibilities(const torch::Tensor& x, const Moments& m) const {
  const GaussianMixture p{mixture_.weights.to(x.options()), m.mean.to(x.options()),
                          torch::sqrt(m.var).to(x.options())};
  return torch::softmax(p.component_log_prob(x), 1);
}

torch::Tensor GmmOracle::score(const torch::Tensor& x, double t) const {
  const Moments m = moments(t);
  const torch::Tensor r = responsibilities(x, m).unsqueeze(2);              // [n, K, 1]
  const torch::Tensor comp = -(x.unsqueeze(1) - m.mean.unsqueeze(0)) / m.var.unsqueeze(0);
  return (r * comp).sum(1);
}

torch::Tensor GmmOracle::posterior_mean(const torch::Tensor& x, double t) const {
  const Moments m = moments(t);
  const double a = schedule_->a(t);
  const torch::Tensor r = responsibilities(x, m).unsqueeze(2);
  const torch::Tensor s2 = (mixture_.stds * mixture_.stds).unsqueeze(0);
  const torch::Tensor comp = mixture_.means.unsqueeze(0) +
                             a * s2 / m.var.unsqueeze(0) * (x.unsqueeze(1) - m.mean.unsqueeze(0));
  return (r * comp).sum(1);
}

std::pair<torch::Tensor, torch::Tensor> GmmOracle::data_and_score(const torch::Tensor& x, double t) const {
  const Moments m = moments(t);
  const double a = schedule_->a(t);
  const torch::Tensor r = responsibilities(x, m).unsqueeze(2);
  const torch::Tensor s2 = (mixture_.stds * mixture_.stds).unsqueeze(0);
  const torch::Tensor dev = x.unsqueeze(1) - m.mean.unsqueeze(0);
  const torch::Tensor y = (r * (mixture_.means.unsqueeze(0) + a * s2 / m.var.unsqueeze(0) * dev)).sum(1);
  return {y, (r * (-dev / m.var.unsqueeze(0))).sum(1)};
}

torch::Tensor GmmOracle::velocity(const torch::Tensor& x, double t) const {
  const Moments m = moments(t);
  const torch::Tensor r = responsibilities(x, m).unsqueeze(2);
  const torch::Tensor comp = m.dmean.unsqueeze(0) + (m.dvar / (2.0 * m.var)).unsqueeze(0) *
                                                        (x.unsqueeze(1) - m.mean.unsqueeze(0));
  return (r * comp).sum(1);
}

std::pair<torch::Tensor, torch::Tensor> GmmOracle::velocity_and_score(const torch::Tensor& x,
                                                                      double t) const {
  const Moments m = moments(t);
  const torch::Tensor r = responsibilities(x, m).unsqueeze(2);
  const torch::Tensor dev = x.unsqueeze(1) - m.mean.unsqueeze(0);
  const torch::Tensor v = m.dmean.unsqueeze(0) + (m.dvar / (2.0 * m.var)).unsqueeze(0) * dev;
  return {(r * v).sum(1), (r * (-dev / m.var.unsqueeze(0))).sum(1)};
}

torch::Tensor GmmOracle::predict(const torch::Tensor& x, double t, Prediction to) const {
  SDEGEN_CHECK(x.dim() == 2 && x.size(1) == mixture_.dim(), "oracle points must have shape [n, ",
               mixture_.dim(), "], got ", x.sizes());
  switch (to) {
    case Prediction::Data: return posterior_mean(x, t);
    case Prediction::Score: return score(x, t);
    case Prediction::Velocity: return velocity(x, t);
    case Prediction::Noise: return -schedule_->b(t) * score(x, t);
    case Prediction::V: {
      const auto [y, s] = data_and_score(x, t);
      const double a = schedule_->a(t), b = schedule_->b(t);
      return a * (-b * s) - b * y;
    }
  }
  throw InvalidArgument("GmmOracle::predict: unknown prediction");
}

}  // namespace sdegen
