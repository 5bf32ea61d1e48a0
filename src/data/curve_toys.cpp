// Noisy-curve toys (moons, swissroll, spirals): a latent position on a curve plus isotropic
// Gaussian noise, with the latent position integrated out by quadrature for the log density.
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/data/toys.h"

namespace sdegen {

namespace {

// Polyline resolution used to measure arc length when laying out quadrature panels.
constexpr int64_t kArcSamples = 4096;
// Block of the [points, nodes] matrix that log_prob works on at once (512 KB in double): small
// enough to stay in cache, which measured ~10x faster than 32 MB blocks.
constexpr int64_t kBlockElements = int64_t{1} << 16;

// Panel edges in t placed at equal arc length, so that no panel covers much more than max_len
// of curve however the speed |c'(t)| varies along it (the spirals are 10x faster outside).
torch::Tensor panel_edges(const CurveArm& arm, double max_len) {
  const auto opts = torch::dtype(torch::kDouble);
  const torch::Tensor t = torch::linspace(arm.t0, arm.t1, kArcSamples + 1, opts);
  const torch::Tensor p = arm.point(t);
  const torch::Tensor seg = (p.slice(0, 1) - p.slice(0, 0, -1)).norm(2, 1);
  const torch::Tensor s = torch::cat({torch::zeros({1}, opts), seg.cumsum(0)});
  const double length = s[-1].item<double>();
  const int64_t panels = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(length / max_len)));
  // Invert the arc length s(t) by linear interpolation between polyline samples.
  const torch::Tensor target = torch::linspace(0.0, length, panels + 1, opts);
  const torch::Tensor hi = torch::searchsorted(s, target).clamp(1, kArcSamples);
  const torch::Tensor lo = hi - 1;
  const torch::Tensor s_lo = s.index_select(0, lo), s_hi = s.index_select(0, hi);
  const torch::Tensor frac = ((target - s_lo) / (s_hi - s_lo).clamp_min(1e-300)).clamp(0.0, 1.0);
  torch::Tensor edges = t.index_select(0, lo) + frac * (t.index_select(0, hi) - t.index_select(0, lo));
  edges[0] = arm.t0;  // exact ends, whatever the rounding of the cumulative sum
  edges[-1] = arm.t1;
  return edges;
}

struct Nodes {
  torch::Tensor t;       // [K]
  torch::Tensor weight;  // [K], quadrature weight times latent pdf
};

// Composite 5-point Gauss-Legendre on the given panels (exact for degree-9 polynomials on each
// panel); see NoisyCurve in toys.h for the accuracy this buys.
Nodes gauss_legendre(const CurveArm& arm, const torch::Tensor& edges) {
  const torch::Tensor a = edges.slice(0, 0, -1), b = edges.slice(0, 1);
  const torch::Tensor mid = (0.5 * (a + b)).unsqueeze(1), half = (0.5 * (b - a)).unsqueeze(1);
  const double inner = std::sqrt(5.0 - 2.0 * std::sqrt(10.0 / 7.0)) / 3.0;
  const double outer = std::sqrt(5.0 + 2.0 * std::sqrt(10.0 / 7.0)) / 3.0;
  const double w_inner = (322.0 + 13.0 * std::sqrt(70.0)) / 900.0;
  const double w_outer = (322.0 - 13.0 * std::sqrt(70.0)) / 900.0;
  const auto opts = torch::dtype(torch::kDouble);
  const torch::Tensor xi = torch::tensor({-outer, -inner, 0.0, inner, outer}, opts).unsqueeze(0);
  const torch::Tensor w =
      torch::tensor({w_outer, w_inner, 128.0 / 225.0, w_inner, w_outer}, opts).unsqueeze(0);
  const torch::Tensor t = (mid + half * xi).reshape({-1});
  return {t, (half * w).reshape({-1}) * arm.latent_pdf(t)};
}

void check_points(const std::string& name, const torch::Tensor& x) {
  SDEGEN_CHECK(x.dim() == 2 && x.size(1) == 2, name, " points must have shape [n, 2], got ", x.sizes());
}

// A latent position uniform on [t0, t1].
CurveArm uniform_arm(double t0, double t1, std::function<torch::Tensor(const torch::Tensor&)> point) {
  CurveArm arm;
  arm.point = std::move(point);
  arm.t0 = t0;
  arm.t1 = t1;
  arm.latent_from_uniform = [t0, t1](const torch::Tensor& u) { return t0 + (t1 - t0) * u; };
  arm.latent_pdf = [t0, t1](const torch::Tensor& t) { return torch::full_like(t, 1.0 / (t1 - t0)); };
  return arm;
}

torch::Tensor xy(const torch::Tensor& x, const torch::Tensor& y) { return torch::stack({x, y}, 1); }

}  // namespace

NoisyCurve::NoisyCurve(std::string name, std::vector<CurveArm> arms, double noise_std)
    : name_(std::move(name)), arms_(std::move(arms)), noise_std_(noise_std) {
  SDEGEN_CHECK(!arms_.empty(), name_, " needs at least one arm");
  SDEGEN_CHECK(noise_std_ > 0 && std::isfinite(noise_std_), name_, " noise std must be positive, got ",
               noise_std_);
  std::vector<torch::Tensor> points, log_w;
  const double arm_weight = 1.0 / static_cast<double>(arms_.size());
  for (const CurveArm& arm : arms_) {
    SDEGEN_CHECK(arm.t1 > arm.t0, name_, " arm needs t1 > t0, got [", arm.t0, ", ", arm.t1, "]");
    const Nodes q = gauss_legendre(arm, panel_edges(arm, 0.5 * noise_std_));
    points.push_back(arm.point(q.t));
    log_w.push_back(torch::log(arm_weight * q.weight));
  }
  nodes_ = torch::cat(points);
  log_weights_ = torch::cat(log_w);
}

torch::Tensor NoisyCurve::sample(int64_t n) const {
  SDEGEN_CHECK(n >= 0, "number of samples must be >= 0, got ", n);
  const auto opts = torch::dtype(torch::kDouble);
  const auto n_arms = static_cast<int64_t>(arms_.size());
  const torch::Tensor which = torch::randint(0, n_arms, {n}, torch::kLong);
  const torch::Tensor u = torch::rand({n}, opts);
  const torch::Tensor eps = torch::randn({n, 2}, opts);
  torch::Tensor x = torch::zeros({n, 2}, opts);
  for (int64_t a = 0; a < n_arms; ++a) {
    const torch::Tensor rows = torch::nonzero(which == a).squeeze(1);
    const CurveArm& arm = arms_[static_cast<size_t>(a)];
    x.index_copy_(0, rows, arm.point(arm.latent_from_uniform(u.index_select(0, rows))));
  }
  return x + noise_std_ * eps;
}

torch::Tensor NoisyCurve::log_prob(const torch::Tensor& x) const {
  check_points(name_, x);
  const torch::Tensor xd = x.to(torch::kDouble);
  const torch::Tensor c = nodes_.to(xd.device()), log_w = log_weights_.to(xd.device());
  const torch::Tensor c2 = c.square().sum(1).unsqueeze(0);  // [1, K]
  const double s2 = noise_std_ * noise_std_, log_norm = -std::log(2.0 * M_PI * s2);
  const int64_t n = xd.size(0), block = std::max<int64_t>(1, kBlockElements / c.size(0));
  torch::Tensor out = torch::empty({n}, xd.options());
  for (int64_t start = 0; start < n; start += block) {
    const torch::Tensor xb = xd.slice(0, start, std::min(n, start + block));
    // |x - c|^2 through a matrix product; clamped because rounding can make it slightly < 0.
    const torch::Tensor d2 = (xb.square().sum(1, true) - 2.0 * xb.matmul(c.t()) + c2).clamp_min(0.0);
    out.slice(0, start, start + xb.size(0)) = torch::logsumexp(log_w.unsqueeze(0) - d2 / (2.0 * s2), 1);
  }
  return out + log_norm;
}

// FFJORD's moons: sklearn's make_moons (unit half circles, the lower one shifted by (1, -0.5)),
// scaled by 2 and shifted by (-1, -0.2); noise 0.1 before scaling. The latent angle is drawn
// uniformly rather than on sklearn's even grid, which is what makes it a density.
DensityPtr make_moons() {
  const double pi = M_PI;
  std::vector<CurveArm> arms = {
      uniform_arm(
          0.0, pi,
          [](const torch::Tensor& t) { return xy(2.0 * torch::cos(t) - 1.0, 2.0 * torch::sin(t) - 0.2); }),
      uniform_arm(
          0.0, pi,
          [](const torch::Tensor& t) { return xy(1.0 - 2.0 * torch::cos(t), 0.8 - 2.0 * torch::sin(t)); }),
  };
  return std::make_shared<NoisyCurve>("moons", std::move(arms), 0.2);
}

// FFJORD's swissroll: sklearn's make_swiss_roll (t = 1.5 pi (1 + 2u), noise 1) keeping the
// (t cos t, t sin t) coordinates and dividing by 5, so it fits in about [-3, 3]^2.
DensityPtr make_swissroll() {
  std::vector<CurveArm> arms = {uniform_arm(1.5 * M_PI, 4.5 * M_PI, [](const torch::Tensor& t) {
    return xy(t * torch::cos(t), t * torch::sin(t)) / 5.0;
  })};
  return std::make_shared<NoisyCurve>("swissroll", std::move(arms), 0.2);
}

// FFJORD's 2spirals: t = 3 pi sqrt(u) (so t has density 2 t / (3 pi)^2), arms c(t) and -c(t)
// with c(t) = (-t cos t, t sin t) / 3, and Gaussian noise std 0.1. FFJORD also adds a uniform
// [0, 0.5] / 3 jitter per coordinate (mirrored on the second arm); it is left out here so that
// the noise stays isotropic Gaussian and the density stays a smooth one-dimensional integral.
DensityPtr make_spirals() {
  const double top = 3.0 * M_PI;
  auto arm = [top](double sign) {
    CurveArm a;
    a.point = [sign](const torch::Tensor& t) {
      return sign * xy(-t * torch::cos(t), t * torch::sin(t)) / 3.0;
    };
    a.t0 = 0.0;
    a.t1 = top;
    a.latent_from_uniform = [top](const torch::Tensor& u) { return top * torch::sqrt(u); };
    a.latent_pdf = [top](const torch::Tensor& t) { return 2.0 * t / (top * top); };
    return a;
  };
  return std::make_shared<NoisyCurve>("spirals", std::vector<CurveArm>{arm(1.0), arm(-1.0)}, 0.1);
}

}  // namespace sdegen
