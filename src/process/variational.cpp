#include "sdegen/process/variational.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

PathSample VariationalProcess::sample(const torch::Tensor& y, const torch::Tensor& t) const {
  return sample(y, t, torch::randn_like(y));
}

PathSample VariationalProcess::sample(const torch::Tensor& y, const torch::Tensor& t,
                                      const torch::Tensor& eps) const {
  SDEGEN_CHECK(eps.sizes() == y.sizes(), "noise of shape ", eps.sizes(), " does not match data of shape ",
               y.sizes());
  return {alpha(y, t) + beta(y, t) * eps, eps};
}

torch::Tensor VariationalProcess::log_q(const torch::Tensor& x, const torch::Tensor& y,
                                        const torch::Tensor& t) const {
  const torch::Tensor beta_ = beta(y, t).expand_as(x);
  const torch::Tensor z = (x - alpha(y, t)) / beta_;
  const double log_2pi = std::log(2.0 * M_PI);
  return sum_rows(-0.5 * z * z - torch::log(beta_) - 0.5 * log_2pi);
}

torch::Tensor VariationalProcess::score(const torch::Tensor& x, const torch::Tensor& y,
                                        const torch::Tensor& t) const {
  const torch::Tensor beta_ = beta(y, t);
  return -(x - alpha(y, t)) / (beta_ * beta_);
}

torch::Tensor VariationalProcess::conditional_drift(const torch::Tensor& x, const torch::Tensor& y,
                                                    const torch::Tensor& t,
                                                    const torch::Tensor& sigma,
                                                    const torch::Tensor& dsigma2_dx) const {
  const torch::Tensor alpha_ = alpha(y, t);
  const torch::Tensor beta_ = beta(y, t);
  const torch::Tensor dev = x - alpha_;
  torch::Tensor g = dalpha_dt(y, t) + dbeta_dt(y, t) * dev / beta_ -
                    0.5 * sigma * sigma * dev / (beta_ * beta_);
  if (dsigma2_dx.defined()) g = g + 0.5 * dsigma2_dx;
  return g;
}

AffineProcess::AffineProcess(SchedulePtr schedule) : schedule_(std::move(schedule)) {
  SDEGEN_CHECK(schedule_ != nullptr, "AffineProcess needs a schedule");
}

torch::Tensor AffineProcess::alpha(const torch::Tensor& y, const torch::Tensor& t) const {
  return per_row(schedule_->a(t), y) * y;
}
torch::Tensor AffineProcess::beta(const torch::Tensor& y, const torch::Tensor& t) const {
  return per_row(schedule_->b(t), y);
}
torch::Tensor AffineProcess::dalpha_dt(const torch::Tensor& y, const torch::Tensor& t) const {
  return per_row(schedule_->da(t), y) * y;
}
torch::Tensor AffineProcess::dbeta_dt(const torch::Tensor& y, const torch::Tensor& t) const {
  return per_row(schedule_->db(t), y);
}

}  // namespace sdegen
