#pragma once
// Checkpoints: everything needed to resume training exactly, or to rebuild a trained model from
// its configuration and load its weights. One checkpoint is the directory <out_dir>/checkpoint/:
//
//   config.json   {"format": "sdegen-checkpoint", "version": 1, "step", "seconds", "kind", "dim",
//                  "ema": bool, "model": model.config(), "train": TrainOptions, "extra": {...}}
//   model.pt      the model's parameters and buffers (torch::nn::Module::save layout)
//   ema.pt        the Ema state, when training averaged the weights (ema_decay > 0)
//   optimizer.pt  the optimiser state (moments and step counts)
//   rng.pt        the batch sampler (generator, permutation, position) and torch's default CPU
//                 generator, which the model's noise draws come from
//
// Saving writes checkpoint.tmp/, renames an existing checkpoint/ to checkpoint.old/, renames the
// new one into place and removes the old one, so there is always one complete checkpoint on disk;
// if a crash leaves only checkpoint.old/, loading uses it.
//
// Errors: a missing checkpoint or file, or a corrupt or truncated one, is an IoError naming the
// file; a checkpoint for a different model (kind, dimension, configuration) is an InvalidArgument
// naming both.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "sdegen/model/generative_model.h"
#include "sdegen/train/batches.h"
#include "sdegen/train/ema.h"
#include "sdegen/train/options.h"

namespace sdegen {

// <out_dir>/checkpoint: where save_checkpoint puts the checkpoint.
std::string checkpoint_dir(const std::string& out_dir);
// The checkpoint to read in out_dir: checkpoint/, else checkpoint.old/ left by an interrupted
// save; an empty string when there is neither.
std::string find_checkpoint(const std::string& out_dir);
inline bool has_checkpoint(const std::string& out_dir) { return !find_checkpoint(out_dir).empty(); }

// The live objects a checkpoint saves and restores.
struct TrainingState {
  GenerativeModel& model;
  torch::optim::Optimizer& optimizer;
  BatchSampler& batches;
  Ema* ema = nullptr;  // nullptr when the weights are not averaged
};

struct CheckpointMeta {
  int64_t step = 0;       // optimiser steps taken
  double seconds = 0;     // training time so far, over every run that led here
  TrainOptions options;
  nlohmann::json extra = nlohmann::json::object();  // the caller's: data statistics, data spec, ...
};

// Writes the checkpoint of out_dir (created if needed) as described above. IoError on failure,
// with any previous checkpoint left in place.
void save_checkpoint(const std::string& out_dir, const TrainingState& state, const CheckpointMeta& meta);

// config.json of the checkpoint in out_dir, with every key above checked for presence and type.
nlohmann::json load_checkpoint_config(const std::string& out_dir);

// Refuses (InvalidArgument) a checkpoint configuration whose kind, dimension or model
// configuration differs from model's: "checkpoint '<dir>' was trained on 2-D data, this run has 1-D".
void check_checkpoint_matches(const nlohmann::json& config, const GenerativeModel& model,
                              const std::string& where);

// Restores everything save_checkpoint wrote into the live state (model, EMA, optimiser, batch
// sampler, torch's default CPU generator) after checking that it matches the model, and returns
// its config.json. Nothing is changed when a file is missing, corrupt or mismatched.
nlohmann::json load_checkpoint(const std::string& out_dir, const TrainingState& state);

// For sampling and evaluation: loads the weights of the checkpoint in out_dir into model (built
// from load_checkpoint_config(out_dir)["model"]); the averaged ones when use_ema and the
// checkpoint has them, else the last iterate.
void load_weights(const std::string& out_dir, GenerativeModel& model, bool use_ema = true);

}  // namespace sdegen
