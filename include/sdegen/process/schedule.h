#pragma once
// Affine schedules: x_t = a(t) y + b(t) eps, t = 0 prior, t = 1 data (see shared/docs/math.md).
// Each schedule gives a, b, their time derivatives, the log signal-to-noise ratio
// lambda = log(a^2 / b^2) (increasing in t), its derivative and its inverse, in closed form.
// Every function takes a tensor of times of any shape and returns a tensor of that shape, so one
// call serves a single time (0-dim), a batch of times ([batch]) or a grid.
// A schedule with learned parameters (process/loglinear.h) returns tensors differentiable in
// them; the scalar conveniences below read their current values.
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sdegen/core/time_grid.h"

namespace sdegen {

// a, b, a', b' at some times, as one named record.
struct ScheduleCoefficients {
  torch::Tensor a, b, da, db;
  // The same coefficients reshaped to broadcast against a state x of shape [batch, ...].
  ScheduleCoefficients like(const torch::Tensor& x) const;
};

// a, b, a', b' and lambda' at n times, as plain arrays (the fused training kernels' form).
struct RawCoefficients {
  std::vector<double> a, b, da, db, dlambda;
  void resize(int64_t n);
};

class AffineSchedule {
 public:
  virtual ~AffineSchedule() = default;
  virtual std::string name() const = 0;

  virtual torch::Tensor a(const torch::Tensor& t) const = 0;
  virtual torch::Tensor b(const torch::Tensor& t) const = 0;
  virtual torch::Tensor da(const torch::Tensor& t) const = 0;
  virtual torch::Tensor db(const torch::Tensor& t) const = 0;
  // lambda = 2 log(a / b) and lambda' = 2 (a'/a - b'/b) unless a schedule has a better form.
  virtual torch::Tensor lambda(const torch::Tensor& t) const;
  virtual torch::Tensor dlambda(const torch::Tensor& t) const;
  virtual torch::Tensor inverse_lambda(const torch::Tensor& lambda) const = 0;
  // b b' = 1/2 d(b^2)/dt, finite where b = 0 even when b' is not (vp and vp-cosine at t = 1,
  // where b ~ sqrt(1 - t)): the probability flow's limit there needs it (eval/oracle.h,
  // process/generative.h). The default multiplies b and b'.
  virtual torch::Tensor b_db(const torch::Tensor& t) const;

  // The generative prior p_0 = N(0, prior_std^2 I). 1 for the variance-preserving and
  // flow schedules; sigma_max for ve and edm. Where q_0 differs from it, the ELBO has a prior term.
  virtual double prior_std() const { return 1.0; }

  ScheduleCoefficients coefficients(const torch::Tensor& t) const;
  // The same values as a, b, da, db and dlambda above at the n times t[0..n), without tensors.
  // The default goes through the tensor functions; the named schedules compute them directly.
  virtual void evaluate(const double* t, int64_t n, RawCoefficients& out) const;

  // Scalar conveniences (double precision), for grids and tests.
  double a(double t) const;
  double b(double t) const;
  double lambda(double t) const;
  double inverse_lambda(double lambda) const;
  double b_db(double t) const;
  LambdaMap lambda_map() const;
};

using SchedulePtr = std::shared_ptr<const AffineSchedule>;

// Parameters of the named schedules. Unset optionals take the named schedule's default,
// shown in the comment.
struct ScheduleOptions {
  double b_min = 0.0;                  // linear: b(1)
  double beta_min = 0.1;               // vp, sub-vp: B0
  double beta_max = 20.0;              // vp, sub-vp: B1
  double cosine_offset = 0.008;        // vp-cosine
  std::optional<double> sigma_min;     // ve: 0.01, edm: 0.002
  std::optional<double> sigma_max;     // ve: 50, edm: 80
  double rho = 7.0;                    // edm
  double lambda_min = -10.0;           // loglinear: lambda(0) (vdm: its initial value)
  double lambda_max = 12.0;            // loglinear: lambda(1) (vdm: its initial value)
};

std::vector<std::string> schedule_names();
// Throws InvalidArgument naming the valid schedules when name is unknown, or naming the
// parameter when an option is out of range.
SchedulePtr make_schedule(const std::string& name, const ScheduleOptions& options = {});

// A time grid following this schedule's noise levels where the kind asks for it.
TimeGrid make_time_grid(int n_steps, const GridOptions& options, const AffineSchedule& schedule);

}  // namespace sdegen
