#pragma once
// How a model is trained: optimiser, learning-rate schedule, clipping, weight averaging, seeding,
// logging and checkpointing, each with its default visible here. Stored in every checkpoint.
#include <nlohmann/json_fwd.hpp>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sdegen {

struct TrainOptions {
  TORCH_ARG(int64_t, steps) = 2000;           // optimiser steps in all (a resumed run stops here too), >= 1
  TORCH_ARG(int64_t, batch) = 125;            // rows per mini-batch, >= 1
  TORCH_ARG(double, lr) = 1e-3;               // peak learning rate, > 0
  TORCH_ARG(std::string, optimizer) = "adam"; // adam, adamw
  // L2 penalty for adam, decoupled decay for adamw; 0 for both by default (adamw with 0 is adam).
  TORCH_ARG(double, weight_decay) = 0.0;      // >= 0
  TORCH_ARG(double, beta1) = 0.9;             // in [0, 1)
  TORCH_ARG(double, beta2) = 0.999;           // in [0, 1)
  TORCH_ARG(double, eps) = 1e-8;              // > 0
  TORCH_ARG(int64_t, warmup_steps) = 0;       // linear warm-up from lr / warmup_steps, in [0, steps]
  TORCH_ARG(std::string, decay) = "none";     // none, cosine, linear: from lr to lr_min after warm-up
  TORCH_ARG(double, lr_min) = 0.0;            // in [0, lr]
  TORCH_ARG(double, grad_clip) = 0.0;         // max global gradient norm, >= 0; 0 means no clipping
  TORCH_ARG(double, ema_decay) = 0.999;       // in [0, 1); 0 means no weight averaging
  TORCH_ARG(uint64_t, seed) = 0;              // batches and the model's noise draws
  TORCH_ARG(int64_t, log_every) = 50;         // a log.csv row every this many steps, >= 1
  // >= 0; 0 means at each validation and at the end (a checkpoint then always holds the best
  // weights validated so far).
  TORCH_ARG(int64_t, checkpoint_every) = 0;
  TORCH_ARG(int64_t, val_every) = 0;          // >= 0; 0 means only at the end (when there is validation data)
  // Early stopping: stop after this many validations in a row without a new best figure, >= 0;
  // 0 means never. Counts validations, not steps, so it follows val_every.
  TORCH_ARG(int64_t, patience) = 0;
  TORCH_ARG(int64_t, threads) = 1;            // torch intra-op threads during training, >= 1
  // The models' fused kernels (GenerativeModel::loss_and_gradient) and the one-pass Adam update
  // (train/optim.h) where they apply; false: loss(), autograd and torch::optim's step. Both
  // give the same run up to rounding.
  TORCH_ARG(bool, fused) = true;
};

std::vector<std::string> optimizer_names();  // "adam", "adamw"
std::vector<std::string> lr_decay_names();   // "none", "cosine", "linear"

// Throws InvalidArgument naming the first option out of range (unknown names list the valid ones).
void check_train_options(const TrainOptions& options);

// The learning rate of step `step` (1-based, in [1, steps]): lr * step / warmup_steps during
// warm-up; then, with p = (step - warmup_steps) / (steps - warmup_steps) in (0, 1],
//   none:   lr
//   linear: lr_min + (lr - lr_min) (1 - p)
//   cosine: lr_min + (lr - lr_min) (1 + cos(pi p)) / 2
// so the last step runs at lr_min.
double learning_rate(const TrainOptions& options, int64_t step);

// Every option under its own name ("betas": [beta1, beta2]).
nlohmann::json to_json(const TrainOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
TrainOptions train_options_from_json(const nlohmann::json& json);

}  // namespace sdegen
