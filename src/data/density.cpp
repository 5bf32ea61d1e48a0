#include "sdegen/data/density.h"

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/data/toys.h"

namespace sdegen {

MixtureDensity::MixtureDensity(std::string name, GaussianMixture mixture)
    : name_(std::move(name)), mixture_(std::move(mixture)) {
  mixture_.validate();
}

namespace {
const torch::Tensor& laplace5_means() {
  static const torch::Tensor means = torch::tensor({-8.0, -4.0, 0.0, 4.0, 8.0}, torch::kDouble);
  return means;
}

GaussianMixture eight_gaussians() {
  // Eight components on a circle of radius 2 sqrt(2), std 1/(2 sqrt(2)) (the usual toy's scale).
  std::vector<double> w(8, 1.0 / 8);
  std::vector<std::vector<double>> mu, sd;
  const double r = 2.0 * std::sqrt(2.0), s = 0.5 / std::sqrt(2.0);
  for (int k = 0; k < 8; ++k) {
    const double phi = 2.0 * M_PI * k / 8;
    mu.push_back({r * std::cos(phi), r * std::sin(phi)});
    sd.push_back({s, s});
  }
  return make_mixture(w, mu, sd);
}
}  // namespace

torch::Tensor Laplace5::sample(int64_t n) const {
  SDEGEN_CHECK(n >= 0, "number of samples must be >= 0, got ", n);
  const torch::Tensor k = torch::randint(0, 5, {n}, torch::kLong);
  // A Laplace(0, 1) draw is an exponential draw with a random sign.
  const torch::Tensor e = -torch::log1p(-torch::rand({n}, torch::kDouble));
  const torch::Tensor sign = torch::randint(0, 2, {n}, torch::kDouble) * 2.0 - 1.0;
  return (laplace5_means().index_select(0, k) + sign * e).unsqueeze(1);
}

torch::Tensor Laplace5::log_prob(const torch::Tensor& x) const {
  SDEGEN_CHECK(x.dim() == 2 && x.size(1) == 1, "laplace5 points must have shape [n, 1], got ", x.sizes());
  const torch::Tensor d = (x - laplace5_means().to(x.options()).unsqueeze(0)).abs();  // [n, 5]
  return torch::logsumexp(-d, 1) + std::log(0.2 * 0.5);
}

std::vector<std::string> density_names() {
  std::vector<std::string> names = {"laplace5", "gmm1d", "gmm2d", "8gaussians"};
  const auto toys = toy_names();
  names.insert(names.end(), toys.begin(), toys.end());
  return names;
}

DensityPtr make_density(const std::string& spec) {
  const std::string ext = ".json";
  if (spec.size() > ext.size() && spec.compare(spec.size() - ext.size(), ext.size(), ext) == 0)
    return std::make_shared<MixtureDensity>(spec, load_mixture_json(spec));
  const auto names = density_names();
  SDEGEN_CHECK(std::find(names.begin(), names.end(), spec) != names.end(), "unknown data '", spec,
               "'; valid: ", join(names), ", or a mixture JSON file (*.json)");
  const auto toys = toy_names();
  if (std::find(toys.begin(), toys.end(), spec) != toys.end()) return make_toy(spec);
  if (spec == "laplace5") return std::make_shared<Laplace5>();
  if (spec == "gmm1d")
    return std::make_shared<MixtureDensity>(
        spec, make_mixture({0.3, 0.5, 0.2}, {{-3.0}, {0.0}, {2.5}}, {{0.5}, {0.8}, {0.4}}));
  if (spec == "gmm2d")
    return std::make_shared<MixtureDensity>(
        spec, make_mixture({0.25, 0.25, 0.3, 0.2}, {{-2.0, -2.0}, {2.0, 2.0}, {-2.0, 2.0}, {2.0, -1.5}},
                           {{0.5, 0.4}, {0.4, 0.6}, {0.3, 0.3}, {0.6, 0.5}}));
  return std::make_shared<MixtureDensity>(spec, eight_gaussians());
}

}  // namespace sdegen
