#pragma once
// A tiny GenerativeModel for the training tests: a small Mlp regresses the data y from noise
// (x = eps, t ~ U(0, 1), both from torch's default generator), so its loss drops quickly towards
// the data's variance and depends on every random stream the trainer manages.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <string>
#include <unistd.h>

#include "sdegen/core/error.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/generative_model.h"
#include "sdegen/net/mlp.h"

namespace sdegen::test {

class TinyModel : public GenerativeModel {
 public:
  explicit TinyModel(int64_t d = 2, int64_t width = 8, std::string kind = "tiny")
      : d_(d), width_(width), kind_(std::move(kind)) {
    net = register_module("net", Mlp(MlpOptions(d).width(width).depth(1).activation("tanh")));
  }

  std::string kind() const override { return kind_; }
  int64_t dim() const override { return d_; }

  torch::Tensor loss(const torch::Tensor& y, const Condition& = {}) override {
    if (is_training()) ++calls;  // the trainer's probes run in eval mode and are not counted
    torch::Tensor l = residual(y).pow(2).mean();
    if (calls == nan_at) l = l * std::numeric_limits<double>::quiet_NaN();
    return l;
  }

  ElboTerms elbo(const torch::Tensor& y, int64_t, const Condition& = {}) override {
    const torch::Tensor r = -sum_rows(residual(y).pow(2));
    return {r, torch::zeros_like(r), torch::zeros_like(r)};
  }

  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec&) const override {
    throw Error("TinyModel::sde: not used");
  }

  nlohmann::json config() const override {
    return {{"kind", kind_}, {"dim", d_}, {"width", width_}};
  }

  Mlp net{nullptr};
  int64_t calls = 0;    // training-mode loss evaluations so far
  int64_t nan_at = -1;  // the loss evaluation (1-based) that returns NaN; -1: none

 private:
  torch::Tensor residual(const torch::Tensor& y) {
    const torch::Tensor eps = torch::randn_like(y);
    const torch::Tensor t = torch::rand({y.size(0)}, y.options());
    return net->forward(eps, t) - y;
  }

  int64_t d_, width_;
  std::string kind_;
};

// A model built with torch's default generator seeded, so that two calls give the same weights.
inline std::shared_ptr<TinyModel> make_tiny(uint64_t init_seed = 7, int64_t d = 2) {
  torch::manual_seed(init_seed);
  return std::make_shared<TinyModel>(d);
}

// 200 rows around (2, -1) with spread 0.5, the same every call.
inline torch::Tensor tiny_data(int64_t n = 200, int64_t d = 2) {
  torch::manual_seed(123);
  return torch::randn({n, d}) * 0.5 + torch::linspace(2.0, -1.0, d);
}

// A fresh, empty directory under the system temporary directory, removed when it goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              ("sdegen_train_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& child) const { return (path_ / child).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace sdegen::test
