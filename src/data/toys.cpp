// The 2-D toys with closed-form (or no) log densities, and the toy factory. The noisy-curve
// toys live in curve_toys.cpp.
#include "sdegen/data/toys.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sdegen/core/check.h"

namespace sdegen {

namespace {

constexpr double kCircleRadii[2] = {3.0, 1.5};  // sklearn's make_circles(factor=0.5) scaled by 3
constexpr double kCircleNoise = 0.24;           // its noise 0.08, scaled by 3
constexpr double kCheckerArea = 8 * 4.0;        // 8 black squares of side 2

void check_points(const std::string& name, const torch::Tensor& x) {
  SDEGEN_CHECK(x.dim() == 2 && x.size(1) == 2, name, " points must have shape [n, 2], got ", x.sizes());
}

void check_count(int64_t n) { SDEGEN_CHECK(n >= 0, "number of samples must be >= 0, got ", n); }

}  // namespace

torch::Tensor Circles::sample(int64_t n) const {
  check_count(n);
  const auto opts = torch::dtype(torch::kDouble);
  const torch::Tensor outer = torch::randint(0, 2, {n}, opts) == 0;
  const torch::Tensor r =
      torch::where(outer, torch::full({n}, kCircleRadii[0], opts), torch::full({n}, kCircleRadii[1], opts));
  const torch::Tensor theta = 2.0 * M_PI * torch::rand({n}, opts);
  const torch::Tensor on_circle = torch::stack({r * torch::cos(theta), r * torch::sin(theta)}, 1);
  return on_circle + kCircleNoise * torch::randn({n, 2}, opts);
}

torch::Tensor Circles::log_prob(const torch::Tensor& x) const {
  check_points(name(), x);
  const torch::Tensor rho = x.to(torch::kDouble).norm(2, 1).unsqueeze(1);  // [n, 1]
  const torch::Tensor r = torch::tensor({kCircleRadii[0], kCircleRadii[1]}, rho.options()).unsqueeze(0);
  const double s2 = kCircleNoise * kCircleNoise;
  // I0(z) = exp(z) i0e(z); folding exp(z) into the Gaussian term leaves exp(-(rho - r)^2 / 2s^2),
  // which stays finite in log space at any distance.
  const torch::Tensor per_circle = -(rho - r).square() / (2.0 * s2) +
                                   torch::log(torch::special::i0e(rho * r / s2)) - std::log(2.0 * M_PI * s2);
  return torch::logsumexp(per_circle, 1) + std::log(0.5);
}

torch::Tensor Checkerboard::sample(int64_t n) const {
  check_count(n);
  const auto opts = torch::dtype(torch::kDouble);
  // Square column i in {-2, ..., 1}; in it the black rows j are those with i + j even.
  const torch::Tensor i = torch::randint(-2, 2, {n}, opts);
  const torch::Tensor j = 2.0 * torch::randint(0, 2, {n}, opts) - 2.0 + torch::remainder(i, 2.0);
  return 2.0 * (torch::stack({i, j}, 1) + torch::rand({n, 2}, opts));
}

torch::Tensor Checkerboard::log_prob(const torch::Tensor& x) const {
  check_points(name(), x);
  const torch::Tensor cell = torch::floor(x.to(torch::kDouble) / 2.0);  // [n, 2] square indices
  const torch::Tensor on_board = ((cell >= -2) & (cell <= 1)).all(1);
  const torch::Tensor black = torch::remainder(cell.sum(1), 2.0) == 0;
  const auto opts = cell.options();
  return torch::where(on_board & black, torch::full({x.size(0)}, -std::log(kCheckerArea), opts),
                      torch::full({x.size(0)}, -std::numeric_limits<double>::infinity(), opts));
}

torch::Tensor Pinwheel::sample(int64_t n) const {
  check_count(n);
  const auto opts = torch::dtype(torch::kDouble);
  const torch::Tensor arm = torch::randint(0, 5, {n}, opts);
  const torch::Tensor z = torch::randn({n, 2}, opts);
  const torch::Tensor radial = 1.0 + 0.3 * z.select(1, 0), tangential = 0.1 * z.select(1, 1);
  const torch::Tensor angle = 2.0 * M_PI / 5.0 * arm + 0.25 * torch::exp(radial);
  const torch::Tensor c = torch::cos(angle), s = torch::sin(angle);
  return 2.0 * torch::stack({radial * c + tangential * s, -radial * s + tangential * c}, 1);
}

torch::Tensor Pinwheel::log_prob(const torch::Tensor& x) const {
  throw InvalidArgument("pinwheel has no closed-form log density");
}

std::vector<std::string> toy_names() {
  return {"moons", "circles", "checkerboard", "swissroll", "pinwheel", "spirals"};
}

DensityPtr make_toy(const std::string& name) {
  check_name("toy", name, toy_names());
  if (name == "moons") return make_moons();
  if (name == "circles") return std::make_shared<Circles>();
  if (name == "checkerboard") return std::make_shared<Checkerboard>();
  if (name == "swissroll") return make_swissroll();
  if (name == "pinwheel") return std::make_shared<Pinwheel>();
  return make_spirals();
}

}  // namespace sdegen
