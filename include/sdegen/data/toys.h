#pragma once
// The standard 2-D toy densities of the generative-modelling literature, following FFJORD's toy
// data (scales included), each sampling in double precision from torch's default generator:
//
//   moons         two interleaved half circles of radius 2, Gaussian noise std 0.2
//   circles       concentric circles of radius 3 and 1.5, Gaussian noise std 0.24
//   checkerboard  uniform on the 8 black squares (side 2) of a 4x4 board on [-4, 4]^2
//   swissroll     c(t) = t (cos t, sin t) / 5, t uniform on [1.5 pi, 4.5 pi], noise std 0.2
//   pinwheel      5 arms: Gaussian blobs rotated by an angle that grows with the radius
//   spirals       two interleaved spirals of 1.5 turns out to radius pi, noise std 0.1
//
// Log densities, decided per toy:
//   checkerboard  closed form: -log 32 on the black squares, -inf elsewhere.
//   circles       closed form: noise around a full circle integrates to a Bessel function
//                 (the Rice density), see Circles.
//   moons, swissroll, spirals
//                 the latent position on the curve is integrated out numerically (composite
//                 Gauss-Legendre over panels shorter than the noise scale): exact to ~1e-8 in
//                 log density wherever log p > -10, see NoisyCurve.
//   pinwheel      none: has_log_prob() is false and log_prob throws (see Pinwheel).
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "sdegen/data/density.h"

namespace sdegen {

// One arm of a noisy curve: a latent position t on [t0, t1] with density latent_pdf(t), drawn as
// latent_from_uniform(u) for u uniform on [0, 1] (the inverse CDF), placed at point(t).
// The functions map a [m] tensor of t (or u) to [m] (or [m, 2] for point), in double.
struct CurveArm {
  std::function<torch::Tensor(const torch::Tensor&)> point;
  double t0 = 0.0, t1 = 1.0;
  std::function<torch::Tensor(const torch::Tensor&)> latent_from_uniform;
  std::function<torch::Tensor(const torch::Tensor&)> latent_pdf;
};

// x = arm.point(t) + noise_std * eps, eps ~ N(0, I), with the arm chosen uniformly at random.
// Its density (1/A) sum_arms int q(t) N(x; c(t), s^2 I) dt has no closed form, so the
// constructor lays composite 5-point Gauss-Legendre panels along each arm, each covering at
// most noise_std / 2 of arc length; log_prob is then a log-sum-exp over those nodes (a few
// hundred to 3000). Measured against brute-force integrals on [-6, 6]^2: error in log p about
// 1e-9 where log p > -10, 1e-5 where log p > -50, 0.03 anywhere (far out the integrand hugs a
// curve's end more tightly than a panel; it stays finite there, never -inf).
class NoisyCurve final : public Density {
 public:
  NoisyCurve(std::string name, std::vector<CurveArm> arms, double noise_std);
  std::string name() const override { return name_; }
  int64_t dim() const override { return 2; }
  torch::Tensor sample(int64_t n) const override;
  torch::Tensor log_prob(const torch::Tensor& x) const override;
  // The quadrature nodes on the curves, [K, 2] (for tests and plots).
  const torch::Tensor& nodes() const { return nodes_; }

 private:
  std::string name_;
  std::vector<CurveArm> arms_;
  double noise_std_;
  torch::Tensor nodes_;        // [K, 2], curve points at every arm's quadrature nodes
  torch::Tensor log_weights_;  // [K], log(arm weight * quadrature weight * latent pdf)
};

// Two concentric circles (radii 3 and 1.5, equally likely, angle uniform) plus isotropic noise
// with std 0.24. Integrating the noise over the angle gives the Rice density in closed form:
// p(x | r) = exp(-(|x| - r)^2 / (2 s^2)) * i0e(r |x| / s^2) / (2 pi s^2).
class Circles final : public Density {
 public:
  std::string name() const override { return "circles"; }
  int64_t dim() const override { return 2; }
  torch::Tensor sample(int64_t n) const override;
  torch::Tensor log_prob(const torch::Tensor& x) const override;
};

// Uniform on the black squares of a 4x4 board of side-2 squares covering [-4, 4)^2: the square
// [2i, 2i + 2) x [2j, 2j + 2) is black when i + j is even.
class Checkerboard final : public Density {
 public:
  std::string name() const override { return "checkerboard"; }
  int64_t dim() const override { return 2; }
  torch::Tensor sample(int64_t n) const override;
  torch::Tensor log_prob(const torch::Tensor& x) const override;
};

// FFJORD's pinwheel: for arm k of 5, features f = (1 + 0.3 z1, 0.1 z2) are rotated clockwise by
// 2 pi k / 5 + 0.25 exp(f1) and scaled by 2. The rotation angle depends on f, and beyond a
// radius of about 3.4 the map from f is no longer one-to-one, so the density is a sum over
// several preimages with fold singularities where they meet: no closed form, so none is given.
class Pinwheel final : public Density {
 public:
  std::string name() const override { return "pinwheel"; }
  int64_t dim() const override { return 2; }
  torch::Tensor sample(int64_t n) const override;
  bool has_log_prob() const override { return false; }
  // Throws InvalidArgument: pinwheel has no closed-form log density.
  torch::Tensor log_prob(const torch::Tensor& x) const override;
};

// moons, swissroll and spirals as NoisyCurve densities (definitions in curve_toys.cpp).
DensityPtr make_moons();
DensityPtr make_swissroll();
DensityPtr make_spirals();

// The toy names: moons, circles, checkerboard, swissroll, pinwheel, spirals.
std::vector<std::string> toy_names();
// The toy called `name`; an unknown name is refused with the list of toy names.
DensityPtr make_toy(const std::string& name);

}  // namespace sdegen
