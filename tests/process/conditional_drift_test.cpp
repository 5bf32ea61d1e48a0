// The conditional drift g keeps q_t(. | y) exact: in 1-D, q = N(alpha, beta^2) satisfies the
// Fokker-Planck equation
//   dq/dt = -d(g q)/dx + 1/2 d^2(sigma^2 q)/dx^2
// under g (VariationalProcess::conditional_drift), checked pointwise by central differences, for
// a constant, a time-dependent and an x-dependent sigma. The x-dependent case runs the
// d(sigma^2)/dx term, which the ELBO's f - g never shows (it cancels there).
#include <cmath>
#include <functional>

#include "sdegen/core/tensor.h"
#include "sdegen/process/variational.h"
#include "support/support.h"

namespace sdegen {
namespace {

using Fn = std::function<torch::Tensor(const torch::Tensor&)>;

// alpha and beta nonlinear in t and depending on y, with their time derivatives in closed form:
// nothing in them is affine, so every term of g is exercised.
class CurvedProcess final : public VariationalProcess {
 public:
  torch::Tensor alpha(const torch::Tensor& y, const torch::Tensor& t) const override {
    const torch::Tensor tt = per_row(t, y);
    return y * (0.3 + tt * tt) + torch::sin(2.0 * tt);
  }
  torch::Tensor beta(const torch::Tensor& y, const torch::Tensor& t) const override {
    return 0.4 + 0.5 * per_row(t, y) + 0.1 * y * y;
  }
  torch::Tensor dalpha_dt(const torch::Tensor& y, const torch::Tensor& t) const override {
    const torch::Tensor tt = per_row(t, y);
    return 2.0 * tt * y + 2.0 * torch::cos(2.0 * tt);
  }
  torch::Tensor dbeta_dt(const torch::Tensor& y, const torch::Tensor& t) const override {
    return torch::full_like(y, 0.5);
  }
};

// A diffusion: sigma^2 as a function of (x, t), and its x-derivative (undefined when it is zero).
struct Diffusion {
  std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)> sigma2, dsigma2_dx;
};

// The largest |FP residual| at points x = alpha + beta z, z in [-3, 3], for a few (y, t), relative
// to the largest |dq/dt| there. with_divergence = false drops the d(sigma^2)/dx term from g.
double fokker_planck_residual(const VariationalProcess& q, const Diffusion& sigma, bool with_divergence = true) {
  const torch::Tensor z = torch::linspace(-3.0, 3.0, 25, torch::kDouble);
  double worst = 0.0, scale = 0.0;
  for (const double y0 : {-1.2, 0.4, 1.5}) {
    for (const double t0 : {0.2, 0.5, 0.8}) {
      const torch::Tensor y = torch::full({25, 1}, y0, torch::kDouble);
      const torch::Tensor t = torch::full({25}, t0, torch::kDouble);
      const torch::Tensor x = q.alpha(y, t) + q.beta(y, t) * z.unsqueeze(1);
      const auto density = [&](const torch::Tensor& xx, const torch::Tensor& tt) {
        return torch::exp(q.log_q(xx, y, tt));
      };
      const auto flux = [&](const torch::Tensor& xx) {  // g q
        const torch::Tensor tt = t.unsqueeze(1);
        const torch::Tensor s = torch::sqrt(sigma.sigma2(xx, tt));
        const torch::Tensor div = with_divergence && sigma.dsigma2_dx ? sigma.dsigma2_dx(xx, tt) : torch::Tensor();
        return q.conditional_drift(xx, y, t, s, div).squeeze(1) * density(xx, t);
      };
      const auto spread = [&](const torch::Tensor& xx) {  // sigma^2 q
        return sigma.sigma2(xx, t.unsqueeze(1)).squeeze(1) * density(xx, t);
      };
      // Five-point differences (error O(h^4)), with the x step on the scale of beta.
      const double h = 1e-3, hx = 1e-3 * q.beta(y, t)[0][0].item<double>();
      const auto d1 = [](const auto& f, const auto& at, double step) {
        return (f(at - 2 * step) - 8.0 * f(at - step) + 8.0 * f(at + step) - f(at + 2 * step)) / (12 * step);
      };
      const torch::Tensor dq_dt = d1([&](const torch::Tensor& tt) { return density(x, tt); }, t, h);
      const torch::Tensor dflux = d1(flux, x, hx);
      const torch::Tensor d2spread = (-spread(x - 2 * hx) + 16.0 * spread(x - hx) - 30.0 * spread(x) +
                                      16.0 * spread(x + hx) - spread(x + 2 * hx)) /
                                     (12 * hx * hx);
      const torch::Tensor residual = dq_dt + dflux - 0.5 * d2spread;
      worst = std::max(worst, residual.abs().max().item<double>());
      scale = std::max(scale, dq_dt.abs().max().item<double>());
    }
  }
  return worst / scale;
}

const Diffusion kConstant{[](const torch::Tensor& x, const torch::Tensor&) { return torch::full_like(x, 0.64); }, {}};
const Diffusion kTimeDependent{
    [](const torch::Tensor& x, const torch::Tensor& t) { return (0.3 + 2.0 * t * t).expand_as(x); }, {}};
// sigma^2 = 0.8 + 0.5 sin(x) + 0.3 x^2 (>= 0.3 everywhere), with a t factor so that it moves too.
const Diffusion kStateDependent{
    [](const torch::Tensor& x, const torch::Tensor& t) {
      return (0.8 + 0.5 * torch::sin(x) + 0.3 * x * x) * (1.0 + t);
    },
    [](const torch::Tensor& x, const torch::Tensor& t) { return (0.5 * torch::cos(x) + 0.6 * x) * (1.0 + t); }};

// Measured: 2.6e-10 to 1.2e-9 for the curved process, up to 2.1e-7 for the named schedules (the
// differences' truncation and rounding; loglinear's lambda moves fastest). Without the
// divergence term: about 2e-2.
constexpr double kTolerance = 1e-6;

TEST(ConditionalDrift, KeepsTheCurvedProcessExactForConstantSigma) {
  EXPECT_LT(fokker_planck_residual(CurvedProcess(), kConstant), kTolerance);
}

TEST(ConditionalDrift, KeepsTheCurvedProcessExactForTimeDependentSigma) {
  EXPECT_LT(fokker_planck_residual(CurvedProcess(), kTimeDependent), kTolerance);
}

TEST(ConditionalDrift, KeepsTheCurvedProcessExactForStateDependentSigma) {
  EXPECT_LT(fokker_planck_residual(CurvedProcess(), kStateDependent), kTolerance);
  // The divergence term is what makes it exact: without it the residual is of order one.
  EXPECT_GT(fokker_planck_residual(CurvedProcess(), kStateDependent, /*with_divergence=*/false), 1e-2);
}

TEST(ConditionalDrift, KeepsEveryNamedAffineProcessExact) {
  for (const std::string name : {"linear", "trig", "vp", "sub-vp", "vp-cosine", "ve", "edm", "loglinear"}) {
    const AffineProcess q(make_schedule(name));
    EXPECT_LT(fokker_planck_residual(q, kConstant), kTolerance) << name;
    EXPECT_LT(fokker_planck_residual(q, kStateDependent), kTolerance) << name;
  }
}

// With sigma = 0, g is the conditional flow alpha' + beta' (x - alpha) / beta; the noise terms
// add (sigma^2 / 2) d log q / dx and 1/2 d(sigma^2)/dx.
TEST(ConditionalDrift, TermsAreTheFormulasOfMathMd) {
  const CurvedProcess q;
  const torch::Tensor y = torch::randn({7, 1}, torch::kDouble), t = torch::rand({7}, torch::kDouble);
  const torch::Tensor x = torch::randn({7, 1}, torch::kDouble) * 2.0;
  const torch::Tensor alpha = q.alpha(y, t), beta = q.beta(y, t);
  const torch::Tensor flow = q.dalpha_dt(y, t) + q.dbeta_dt(y, t) * (x - alpha) / beta;
  const torch::Tensor zero = torch::zeros({}, torch::kDouble);
  EXPECT_LT(test::max_abs_diff(q.conditional_drift(x, y, t, zero), flow), 1e-14);
  const torch::Tensor sigma = torch::full({7, 1}, 0.9, torch::kDouble), div = torch::randn({7, 1}, torch::kDouble);
  const torch::Tensor score = -(x - alpha) / (beta * beta);
  EXPECT_LT(test::max_abs_diff(q.score(x, y, t), score), 1e-14);
  EXPECT_LT(test::max_abs_diff(q.conditional_drift(x, y, t, sigma, div), flow + 0.5 * div + 0.5 * 0.81 * score),
            1e-13);
}

}  // namespace
}  // namespace sdegen
