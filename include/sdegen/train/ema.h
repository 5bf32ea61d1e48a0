#pragma once
// An exponential moving average of a module's parameters, for evaluation and sampling: averaged
// weights are usually better than the last iterate of a noisy optimiser. Buffers (running
// statistics, fixed random features) are not averaged; the average keeps a copy of the latest.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sdegen {

class Ema {
 public:
  // Starts the average at the module's current parameters. decay in [0, 1). With warmup the
  // update after n earlier ones uses min(decay, (1 + n) / (10 + n)), so that the average forgets
  // the initial weights within a few hundred steps instead of ~1 / (1 - decay) (as in
  // TensorFlow's ExponentialMovingAverage with num_updates); without it, always decay.
  Ema(const torch::nn::Module& module, double decay, bool warmup = true);

  double decay() const { return decay_; }
  bool warmup() const { return warmup_; }
  int64_t updates() const { return updates_; }
  // The decay the next update will use.
  double next_decay() const;

  // average = d * average + (1 - d) * parameter, for every parameter; buffers copied.
  void update(const torch::nn::Module& module);
  // Writes the averaged parameters and the buffer copies into the module.
  void copy_to(torch::nn::Module& module) const;
  // Exchanges the module's parameters and buffers with the average's (exactly, by copying), so a
  // second swap restores both: swap, evaluate, swap back.
  void swap(torch::nn::Module& module);

  const std::vector<std::string>& parameter_names() const { return param_names_; }
  // The average of the parameter named as in module.named_parameters(); refuses an unknown name.
  const torch::Tensor& average(const std::string& name) const;
  // The name of the first averaged parameter or buffer copy holding NaN or infinity; empty when
  // every value is finite.
  std::string first_non_finite() const;

  // Writes decay, warmup, the update count and every tensor with its name.
  void save(torch::serialize::OutputArchive& archive) const;
  // Restores a state written by save for a module with the same parameter and buffer names and
  // shapes; refuses anything else with InvalidArgument naming the first difference. decay and
  // warmup are taken from the archive.
  void load(torch::serialize::InputArchive& archive);

 private:
  void check_same_layout(const torch::nn::Module& module, const char* what) const;

  double decay_;
  bool warmup_;
  int64_t updates_ = 0;
  std::vector<std::string> param_names_, buffer_names_;
  std::vector<torch::Tensor> params_, buffers_;
};

}  // namespace sdegen
