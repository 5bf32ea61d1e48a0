#pragma once
// The variational (inference) process: Gaussian marginals q_t(x | y) = N(alpha(y,t), beta(y,t)^2 I).
// alpha and beta may be fixed (an affine schedule: alpha = a(t) y, beta = b(t)) or learned
// networks (a later module). Times are [batch] tensors, one per row of y.
#include <torch/torch.h>

#include "sdegen/process/schedule.h"

namespace sdegen {

// A reparameterised draw x = alpha + beta eps from q_t(. | y), with the noise that made it.
struct PathSample {
  torch::Tensor x, eps;
};

class VariationalProcess {
 public:
  virtual ~VariationalProcess() = default;
  // Shapes: y [batch, ...], t [batch]. alpha has y's shape; beta broadcasts against it.
  virtual torch::Tensor alpha(const torch::Tensor& y, const torch::Tensor& t) const = 0;
  virtual torch::Tensor beta(const torch::Tensor& y, const torch::Tensor& t) const = 0;
  virtual torch::Tensor dalpha_dt(const torch::Tensor& y, const torch::Tensor& t) const = 0;
  virtual torch::Tensor dbeta_dt(const torch::Tensor& y, const torch::Tensor& t) const = 0;

  // x_t ~ q_t(. | y), with eps ~ N(0, I) drawn from torch's default generator.
  PathSample sample(const torch::Tensor& y, const torch::Tensor& t) const;
  // The same with a given eps (for antithetic or common random numbers).
  PathSample sample(const torch::Tensor& y, const torch::Tensor& t, const torch::Tensor& eps) const;
  // log q_t(x | y), one value per row: [batch].
  torch::Tensor log_q(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t) const;
  // d log q_t(x | y) / dx = -(x - alpha) / beta^2.
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t) const;

  // The drift that carries q_t(. | y) along its marginals for the diffusion sigma:
  //   g = d alpha/dt + (d beta/dt)(x - alpha)/beta + 1/2 d(sigma^2)/dx + (sigma^2/2) d log q/dx.
  // sigma broadcasts against x. dsigma2_dx is d(sigma^2)/dx for a state-dependent diffusion;
  // leave it undefined when sigma does not depend on x.
  torch::Tensor conditional_drift(const torch::Tensor& x, const torch::Tensor& y,
                                  const torch::Tensor& t, const torch::Tensor& sigma,
                                  const torch::Tensor& dsigma2_dx = {}) const;
};

// alpha = a(t) y, beta = b(t): the fixed schedules.
class AffineProcess final : public VariationalProcess {
 public:
  explicit AffineProcess(SchedulePtr schedule);
  const AffineSchedule& schedule() const { return *schedule_; }
  torch::Tensor alpha(const torch::Tensor& y, const torch::Tensor& t) const override;
  torch::Tensor beta(const torch::Tensor& y, const torch::Tensor& t) const override;
  torch::Tensor dalpha_dt(const torch::Tensor& y, const torch::Tensor& t) const override;
  torch::Tensor dbeta_dt(const torch::Tensor& y, const torch::Tensor& t) const override;

 private:
  SchedulePtr schedule_;
};

}  // namespace sdegen
