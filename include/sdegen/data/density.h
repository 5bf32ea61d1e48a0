#pragma once
// Data densities: built in by name, or a Gaussian mixture from a JSON file. Each samples and,
// where it is known, gives its exact log density; Gaussian mixtures also expose their
// parameters, which is what the exact oracle needs.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "sdegen/data/mixture.h"

namespace sdegen {

class Density {
 public:
  virtual ~Density() = default;
  virtual std::string name() const = 0;
  virtual int64_t dim() const = 0;
  // n draws, [n, dim], from torch's default generator, in double precision.
  virtual torch::Tensor sample(int64_t n) const = 0;
  // Exact log density of each row of x [n, dim]: [n]. Throws InvalidArgument when
  // has_log_prob() is false.
  virtual torch::Tensor log_prob(const torch::Tensor& x) const = 0;
  // False for densities that can be sampled but have no computable log density (pinwheel).
  virtual bool has_log_prob() const { return true; }
  // The mixture's parameters when the density is a Gaussian mixture, else nullptr.
  virtual const GaussianMixture* mixture() const { return nullptr; }
};

using DensityPtr = std::shared_ptr<const Density>;

class MixtureDensity final : public Density {
 public:
  MixtureDensity(std::string name, GaussianMixture mixture);
  std::string name() const override { return name_; }
  int64_t dim() const override { return mixture_.dim(); }
  torch::Tensor sample(int64_t n) const override { return mixture_.sample(n); }
  torch::Tensor log_prob(const torch::Tensor& x) const override { return mixture_.log_prob(x); }
  const GaussianMixture* mixture() const override { return &mixture_; }

 private:
  std::string name_;
  GaussianMixture mixture_;
};

// laplace5: the paper's 1-D density, five Laplace components with means -8, -4, 0, 4, 8,
// scale 1 and equal weights.
class Laplace5 final : public Density {
 public:
  std::string name() const override { return "laplace5"; }
  int64_t dim() const override { return 1; }
  torch::Tensor sample(int64_t n) const override;
  torch::Tensor log_prob(const torch::Tensor& x) const override;
};

// The built-in names: laplace5, gmm1d, gmm2d, 8gaussians, then the 2-D toys of data/toys.h.
std::vector<std::string> density_names();
// A built-in name, or the path of a mixture JSON file (ending in .json). An unknown name lists
// the valid ones.
DensityPtr make_density(const std::string& spec);

}  // namespace sdegen
