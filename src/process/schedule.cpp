#include "sdegen/process/schedule.h"

#include "sdegen/core/tensor.h"

namespace sdegen {

ScheduleCoefficients ScheduleCoefficients::like(const torch::Tensor& x) const {
  return {per_row(a, x), per_row(b, x), per_row(da, x), per_row(db, x)};
}

torch::Tensor AffineSchedule::lambda(const torch::Tensor& t) const {
  return 2.0 * (torch::log(a(t)) - torch::log(b(t)));
}

torch::Tensor AffineSchedule::dlambda(const torch::Tensor& t) const {
  return 2.0 * (da(t) / a(t) - db(t) / b(t));
}

ScheduleCoefficients AffineSchedule::coefficients(const torch::Tensor& t) const {
  return {a(t), b(t), da(t), db(t)};
}

namespace {
torch::Tensor scalar(double v) { return torch::tensor(v, torch::kDouble); }
}  // namespace

double AffineSchedule::a(double t) const { return a(scalar(t)).item<double>(); }
double AffineSchedule::b(double t) const { return b(scalar(t)).item<double>(); }
double AffineSchedule::lambda(double t) const { return lambda(scalar(t)).item<double>(); }
double AffineSchedule::inverse_lambda(double l) const {
  return inverse_lambda(scalar(l)).item<double>();
}

LambdaMap AffineSchedule::lambda_map() const {
  return {[this](double t) { return lambda(t); }, [this](double l) { return inverse_lambda(l); }};
}

TimeGrid make_time_grid(int n_steps, const GridOptions& options, const AffineSchedule& schedule) {
  const LambdaMap map = schedule.lambda_map();
  return make_time_grid(n_steps, options, &map);
}

}  // namespace sdegen
