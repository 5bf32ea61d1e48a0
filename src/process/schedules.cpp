// The named affine schedules of shared/docs/math.md, in closed form. Schedules defined in the
// noising direction use s = 1 - t; that mapping happens here and nowhere else. loglinear, which
// may also be learned, has its own file (loglinear.cpp).
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/process/loglinear.h"
#include "sdegen/process/schedule.h"

namespace sdegen {
namespace {

using torch::Tensor;
constexpr double kPi = 3.14159265358979323846;

class Linear final : public AffineSchedule {
 public:
  explicit Linear(double b_min) : c_(1.0 - b_min) {}
  std::string name() const override { return "linear"; }
  Tensor a(const Tensor& t) const override { return t.clone(); }
  Tensor b(const Tensor& t) const override { return 1.0 - c_ * t; }
  Tensor da(const Tensor& t) const override { return torch::ones_like(t); }
  Tensor db(const Tensor& t) const override { return torch::full_like(t, -c_); }
  Tensor dlambda(const Tensor& t) const override { return 2.0 * (1.0 / t + c_ / (1.0 - c_ * t)); }
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      o.a[i] = t[i], o.b[i] = 1.0 - c_ * t[i], o.da[i] = 1.0, o.db[i] = -c_;
      o.dlambda[i] = 2.0 * (1.0 / t[i] + c_ / (1.0 - c_ * t[i]));
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    const Tensor r = torch::exp(0.5 * l);  // r = a / b = t / (1 - c t)
    return r / (1.0 + c_ * r);
  }

 private:
  double c_;
};

// b is written as sin(pi s / 2), not cos(pi t / 2), so that b(1) = 0 exactly (cos(pi / 2) is
// 6e-17): lambda(1) is then +inf like every other schedule's data end, and grids clip it.
class Trig final : public AffineSchedule {
 public:
  std::string name() const override { return "trig"; }
  Tensor a(const Tensor& t) const override { return torch::sin(0.5 * kPi * t); }
  Tensor b(const Tensor& t) const override { return torch::sin(0.5 * kPi * (1.0 - t)); }
  Tensor da(const Tensor& t) const override { return 0.5 * kPi * b(t); }
  Tensor db(const Tensor& t) const override { return -0.5 * kPi * a(t); }
  Tensor lambda(const Tensor& t) const override { return 2.0 * (torch::log(a(t)) - torch::log(b(t))); }
  Tensor dlambda(const Tensor& t) const override { return kPi / (a(t) * b(t)); }  // 2 pi / sin(pi t)
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const double s = std::sin(0.5 * kPi * t[i]), c = std::sin(0.5 * kPi * (1.0 - t[i]));
      o.a[i] = s, o.b[i] = c, o.da[i] = 0.5 * kPi * c, o.db[i] = -0.5 * kPi * s;
      o.dlambda[i] = kPi / (s * c);
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    return (2.0 / kPi) * torch::atan(torch::exp(0.5 * l));
  }
};

// log a(t) of the continuous DDPM (vp) schedule, shared by vp and sub-vp:
// log a = -1/4 s^2 (B1 - B0) - 1/2 s B0 with s = 1 - t; d log a / dt = beta(s) / 2.
struct VpLogAlpha {
  double b0, b1;
  Tensor log_a(const Tensor& t) const {
    const Tensor s = 1.0 - t;
    return -0.25 * s * s * (b1 - b0) - 0.5 * s * b0;
  }
  Tensor dlog_a(const Tensor& t) const { return 0.5 * (b0 + (1.0 - t) * (b1 - b0)); }
  double log_a(double t) const {
    const double s = 1.0 - t;
    return -0.25 * s * s * (b1 - b0) - 0.5 * s * b0;
  }
  double dlog_a(double t) const { return 0.5 * (b0 + (1.0 - t) * (b1 - b0)); }
  // t such that 2 log a(t) = two_log_a (the root of 1/2 (B1-B0) s^2 + B0 s + 2 log a = 0).
  Tensor t_from_two_log_a(const Tensor& two_log_a) const {
    const double k = b1 - b0;
    const Tensor s = (-b0 + torch::sqrt(b0 * b0 - 2.0 * k * two_log_a)) / k;
    return 1.0 - s;
  }
};

class Vp final : public AffineSchedule {
 public:
  Vp(double b0, double b1) : v_{b0, b1} {}
  std::string name() const override { return "vp"; }
  Tensor a(const Tensor& t) const override { return torch::exp(v_.log_a(t)); }
  Tensor b(const Tensor& t) const override { return torch::sqrt(-torch::expm1(2.0 * v_.log_a(t))); }
  Tensor da(const Tensor& t) const override { return a(t) * v_.dlog_a(t); }
  Tensor db(const Tensor& t) const override {
    const Tensor a2 = torch::exp(2.0 * v_.log_a(t));
    return -a2 * v_.dlog_a(t) / torch::sqrt(1.0 - a2);
  }
  // b b' = -a a' (a^2 + b^2 = 1): finite at t = 1, where b = 0 and b' = -inf.
  Tensor b_db(const Tensor& t) const override { return -torch::exp(2.0 * v_.log_a(t)) * v_.dlog_a(t); }
  Tensor lambda(const Tensor& t) const override {
    const Tensor two_la = 2.0 * v_.log_a(t);
    return two_la - torch::log(-torch::expm1(two_la));
  }
  Tensor dlambda(const Tensor& t) const override {
    return 2.0 * v_.dlog_a(t) / (-torch::expm1(2.0 * v_.log_a(t)));
  }
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const double la = v_.log_a(t[i]), dla = v_.dlog_a(t[i]), a2 = std::exp(2.0 * la);
      o.a[i] = std::exp(la), o.b[i] = std::sqrt(-std::expm1(2.0 * la));
      o.da[i] = o.a[i] * dla, o.db[i] = -a2 * dla / std::sqrt(1.0 - a2);
      o.dlambda[i] = 2.0 * dla / (-std::expm1(2.0 * la));
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    return v_.t_from_two_log_a(-torch::nn::functional::softplus(-l));  // log sigmoid(l)
  }

 private:
  VpLogAlpha v_;
};

class SubVp final : public AffineSchedule {
 public:
  SubVp(double b0, double b1) : v_{b0, b1} {}
  std::string name() const override { return "sub-vp"; }
  Tensor a(const Tensor& t) const override { return torch::exp(v_.log_a(t)); }
  Tensor b(const Tensor& t) const override { return -torch::expm1(2.0 * v_.log_a(t)); }
  Tensor da(const Tensor& t) const override { return a(t) * v_.dlog_a(t); }
  Tensor db(const Tensor& t) const override {
    return -2.0 * torch::exp(2.0 * v_.log_a(t)) * v_.dlog_a(t);
  }
  Tensor lambda(const Tensor& t) const override {
    const Tensor two_la = 2.0 * v_.log_a(t);
    return two_la - 2.0 * torch::log(-torch::expm1(two_la));
  }
  Tensor dlambda(const Tensor& t) const override {
    const Tensor a2 = torch::exp(2.0 * v_.log_a(t));
    return 2.0 * v_.dlog_a(t) * (1.0 + 2.0 * a2 / (1.0 - a2));
  }
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const double la = v_.log_a(t[i]), dla = v_.dlog_a(t[i]), a2 = std::exp(2.0 * la);
      o.a[i] = std::exp(la), o.b[i] = -std::expm1(2.0 * la);
      o.da[i] = o.a[i] * dla, o.db[i] = -2.0 * a2 * dla;
      o.dlambda[i] = 2.0 * dla * (1.0 + 2.0 * a2 / (1.0 - a2));
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    // u = a^2 solves e^l (1 - u)^2 = u; the root below 1, in a form without cancellation.
    const Tensor e = torch::exp(l);
    const Tensor u = 2.0 * e / ((2.0 * e + 1.0) + torch::sqrt(4.0 * e + 1.0));
    return v_.t_from_two_log_a(torch::log(u));
  }

 private:
  VpLogAlpha v_;
};

// Improved-DDPM cosine: a = f(s) / f(0), f(s) = cos((s + o) / (1 + o) * pi / 2). Written with
// c = pi / (2 (1 + o)) as a = sin(c t) / sin(c) and b^2 = sin(c (1 + t)) sin(c (1 - t)) / sin(c)^2,
// so that a(0) = 0 and b(1) = 0 exactly (the cosine form leaves a(0) = 6e-17, a finite lambda(0)
// of -75 that no grid clips) and b has no cancellation near the data end.
class VpCosine final : public AffineSchedule {
 public:
  explicit VpCosine(double offset) : c_(kPi / (2.0 * (1.0 + offset))), f0_(std::sin(c_)) {}
  std::string name() const override { return "vp-cosine"; }
  Tensor a(const Tensor& t) const override { return torch::sin(c_ * t) / f0_; }
  Tensor b(const Tensor& t) const override {
    return torch::sqrt(torch::sin(c_ * (1.0 + t)) * torch::sin(c_ * (1.0 - t))) / f0_;
  }
  Tensor da(const Tensor& t) const override { return c_ * torch::cos(c_ * t) / f0_; }
  Tensor db(const Tensor& t) const override { return -a(t) * da(t) / b(t); }
  Tensor b_db(const Tensor& t) const override { return -a(t) * da(t); }  // a^2 + b^2 = 1
  Tensor dlambda(const Tensor& t) const override {  // 2 (a'/a - b'/b) = 2 a' / (a b^2)
    const Tensor b_ = b(t);
    return 2.0 * da(t) / (a(t) * b_ * b_);
  }
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const double a = std::sin(c_ * t[i]) / f0_;
      o.a[i] = a, o.b[i] = std::sqrt(std::sin(c_ * (1.0 + t[i])) * std::sin(c_ * (1.0 - t[i]))) / f0_;
      o.da[i] = c_ * std::cos(c_ * t[i]) / f0_, o.db[i] = -a * o.da[i] / o.b[i];
      o.dlambda[i] = 2.0 * o.da[i] / (a * o.b[i] * o.b[i]);
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    return torch::asin(torch::sqrt(torch::sigmoid(l)) * f0_) / c_;
  }

 private:
  double c_, f0_;
};

// Variance exploding: a = 1, b = s_min (s_max / s_min)^s.
class Ve final : public AffineSchedule {
 public:
  Ve(double smin, double smax) : smin_(smin), smax_(smax), k_(std::log(smax / smin)) {}
  std::string name() const override { return "ve"; }
  Tensor a(const Tensor& t) const override { return torch::ones_like(t); }
  Tensor b(const Tensor& t) const override { return smin_ * torch::exp((1.0 - t) * k_); }
  Tensor da(const Tensor& t) const override { return torch::zeros_like(t); }
  Tensor db(const Tensor& t) const override { return -k_ * b(t); }
  Tensor lambda(const Tensor& t) const override { return -2.0 * torch::log(b(t)); }
  Tensor dlambda(const Tensor& t) const override { return torch::full_like(t, 2.0 * k_); }
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      o.a[i] = 1.0, o.b[i] = smin_ * std::exp((1.0 - t[i]) * k_), o.da[i] = 0.0, o.db[i] = -k_ * o.b[i];
      o.dlambda[i] = 2.0 * k_;
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    return 1.0 - (-0.5 * l - std::log(smin_)) / k_;
  }
  double prior_std() const override { return smax_; }

 private:
  double smin_, smax_, k_;
};

// EDM (Karras et al.): a = 1, b = (s_max^(1/rho) + t (s_min^(1/rho) - s_max^(1/rho)))^rho.
class Edm final : public AffineSchedule {
 public:
  Edm(double smin, double smax, double rho)
      : smax_(smax), rho_(rho), A_(std::pow(smax, 1.0 / rho)), B_(std::pow(smin, 1.0 / rho)) {}
  std::string name() const override { return "edm"; }
  Tensor a(const Tensor& t) const override { return torch::ones_like(t); }
  Tensor b(const Tensor& t) const override { return torch::pow(base(t), rho_); }
  Tensor da(const Tensor& t) const override { return torch::zeros_like(t); }
  Tensor db(const Tensor& t) const override {
    return rho_ * torch::pow(base(t), rho_ - 1.0) * (B_ - A_);
  }
  Tensor lambda(const Tensor& t) const override { return -2.0 * rho_ * torch::log(base(t)); }
  Tensor dlambda(const Tensor& t) const override { return -2.0 * rho_ * (B_ - A_) / base(t); }
  void evaluate(const double* t, int64_t n, RawCoefficients& o) const override {
    o.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const double base = A_ + t[i] * (B_ - A_);
      o.a[i] = 1.0, o.b[i] = std::pow(base, rho_), o.da[i] = 0.0;
      o.db[i] = rho_ * std::pow(base, rho_ - 1.0) * (B_ - A_), o.dlambda[i] = -2.0 * rho_ * (B_ - A_) / base;
    }
  }
  Tensor inverse_lambda(const Tensor& l) const override {
    return (torch::exp(-0.5 * l / rho_) - A_) / (B_ - A_);
  }
  double prior_std() const override { return smax_; }

 private:
  Tensor base(const Tensor& t) const { return A_ + t * (B_ - A_); }
  double smax_, rho_, A_, B_;
};

}  // namespace

std::vector<std::string> schedule_names() {
  return {"linear", "trig", "vp", "vp-cosine", "sub-vp", "ve", "edm", "loglinear"};
}

SchedulePtr make_schedule(const std::string& name, const ScheduleOptions& o) {
  check_name("schedule", name, schedule_names());
  if (name == "linear") {
    SDEGEN_CHECK(o.b_min >= 0 && o.b_min < 1, "linear schedule needs 0 <= b_min < 1, got ", o.b_min);
    return std::make_shared<Linear>(o.b_min);
  }
  if (name == "trig") return std::make_shared<Trig>();
  if (name == "vp" || name == "sub-vp") {
    SDEGEN_CHECK(o.beta_min > 0 && o.beta_max > o.beta_min,
                 name, " schedule needs 0 < beta_min < beta_max, got beta_min = ", o.beta_min,
                 ", beta_max = ", o.beta_max);
    if (name == "vp") return std::make_shared<Vp>(o.beta_min, o.beta_max);
    return std::make_shared<SubVp>(o.beta_min, o.beta_max);
  }
  if (name == "vp-cosine") {
    SDEGEN_CHECK(o.cosine_offset > 0, "vp-cosine needs a positive offset, got ", o.cosine_offset);
    return std::make_shared<VpCosine>(o.cosine_offset);
  }
  if (name == "ve" || name == "edm") {
    const bool ve = name == "ve";
    const double smin = o.sigma_min.value_or(ve ? 0.01 : 0.002);
    const double smax = o.sigma_max.value_or(ve ? 50.0 : 80.0);
    SDEGEN_CHECK(smin > 0 && smax > smin, name, " schedule needs 0 < sigma_min < sigma_max, got ",
                 "sigma_min = ", smin, ", sigma_max = ", smax);
    if (ve) return std::make_shared<Ve>(smin, smax);
    SDEGEN_CHECK(o.rho > 0, "edm schedule needs rho > 0, got ", o.rho);
    return std::make_shared<Edm>(smin, smax, o.rho);
  }
  SDEGEN_CHECK(o.lambda_max > o.lambda_min, "loglinear schedule needs lambda_min < lambda_max, got ",
               o.lambda_min, " and ", o.lambda_max);
  return std::make_shared<LogLinearSchedule>(loglinear_parameters(o.lambda_min, o.lambda_max));
}

}  // namespace sdegen
