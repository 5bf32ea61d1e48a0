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

torch::Tensor AffineSchedule::b_db(const torch::Tensor& t) const { return b(t) * db(t); }

ScheduleCoefficients AffineSchedule::coefficients(const torch::Tensor& t) const {
  return {a(t), b(t), da(t), db(t)};
}

void RawCoefficients::resize(int64_t n) {
  const auto size = static_cast<size_t>(n);
  a.resize(size), b.resize(size), da.resize(size), db.resize(size), dlambda.resize(size);
}

void AffineSchedule::evaluate(const double* t, int64_t n, RawCoefficients& out) const {
  out.resize(n);
  const torch::Tensor tt =
      torch::from_blob(const_cast<double*>(t), {n}, torch::kDouble);  // read only
  auto put = [n](const torch::Tensor& v, std::vector<double>& into) {
    const torch::Tensor c = v.detach().to(torch::kDouble).contiguous();
    std::copy(c.data_ptr<double>(), c.data_ptr<double>() + n, into.begin());
  };
  torch::NoGradGuard no_grad;
  put(a(tt), out.a), put(b(tt), out.b), put(da(tt), out.da), put(db(tt), out.db), put(dlambda(tt), out.dlambda);
}

namespace {
torch::Tensor scalar(double v) { return torch::tensor(v, torch::kDouble); }
}  // namespace

double AffineSchedule::a(double t) const { return a(scalar(t)).item<double>(); }
double AffineSchedule::b(double t) const { return b(scalar(t)).item<double>(); }
double AffineSchedule::lambda(double t) const { return lambda(scalar(t)).item<double>(); }
double AffineSchedule::b_db(double t) const { return b_db(scalar(t)).item<double>(); }
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
