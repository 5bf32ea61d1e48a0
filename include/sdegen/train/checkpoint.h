#pragma once
// Checkpoints: everything needed to resume training exactly, or to rebuild a trained model from
// its configuration and load its weights. One checkpoint is the directory <out_dir>/checkpoint/:
//
//   config.json   {"format": "sdegen-checkpoint", "version": 1, "step", "seconds", "kind", "dim",
//                  "ema": bool, "model": model.config(), "train": TrainOptions, "extra": {...},
//                  "best": {"step", "metric", "value", "stale"} (when validation kept weights),
//                  "files": {"model.pt": {"bytes", "crc32"}, ...}}
//   model.pt      the model's parameters and buffers (torch::nn::Module::save layout)
//   ema.pt        the Ema state, when training averaged the weights (ema_decay > 0)
//   best.pt       the weights with the best validation figure so far (Ema layout), when kept
//   optimizer.pt  the optimiser state (moments and step counts)
//   <attachment>  files of the caller's (CheckpointMeta::attachments), recorded in "files" too
//   rng.pt        the batch sampler (generator, permutation, position) and torch's default CPU
//                 generator, which the model's noise draws come from
//
// Saving refuses a state with NaN or infinite weights, averages or moments, and a configuration
// with a non-finite number (JSON would store it as null: a checkpoint that could never load). It
// writes checkpoint.tmp/, reads every file back (the configuration must parse to what was meant,
// and each file's size and CRC-32 go into config.json), renames an existing checkpoint/ to
// checkpoint.old/, renames the new one into place and removes the old one, so there is always one
// complete checkpoint on disk; if a crash leaves only checkpoint.old/, loading uses it.
//
// Loading checks each file against its recorded size and CRC-32 (checkpoints written before the
// checksums existed are read without), every tensor's name, shape and dtype, and that weights and
// optimiser moments are finite.
// Errors: a missing checkpoint or file, or a corrupt, truncated, changed or non-finite one, is an
// IoError naming the file; a checkpoint for a different model (kind, dimension, configuration) is
// an InvalidArgument naming both; a state that may not be saved is a NumericError.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
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

// The weights with the lowest validation figure seen so far: what sampling and evaluation use.
struct BestWeights {
  std::optional<Ema> weights;  // a snapshot: an Ema that is never updated holds a copy of the weights
  int64_t step = -1;           // the step they were validated at; -1: none yet
  std::string metric;          // the validation column they are judged by
  double value = std::numeric_limits<double>::infinity();
  int64_t stale = 0;           // validations since the last improvement (for early stopping)
};

// The live objects a checkpoint saves and restores.
struct TrainingState {
  GenerativeModel& model;
  torch::optim::Optimizer& optimizer;
  BatchSampler& batches;
  Ema* ema = nullptr;          // nullptr when the weights are not averaged
  BestWeights* best = nullptr; // nullptr when no best weights are kept
};

struct CheckpointMeta {
  int64_t step = 0;       // optimiser steps taken
  double seconds = 0;     // training time so far, over every run that led here
  TrainOptions options;
  nlohmann::json extra = nlohmann::json::object();  // the caller's: data statistics, data spec, ...
  // The caller's files, by name (plain names other than the checkpoint's own), stored beside the
  // model with their sizes and CRC-32s: a latent model's autoencoder (model/latent.h).
  std::map<std::string, std::string> attachments;
};

// The first reason the state may not be saved (NaN or infinite weights, averages, best weights or
// optimiser moments, a malformed optimiser state), or an empty string.
std::string training_state_problem(const TrainingState& state);

// Writes the checkpoint of out_dir (created if needed) as described above. NumericError when the
// state may not be saved (training_state_problem), InvalidArgument for a configuration with a
// non-finite number, IoError when writing fails; any previous checkpoint is left in place.
void save_checkpoint(const std::string& out_dir, const TrainingState& state, const CheckpointMeta& meta);

// config.json of the checkpoint in out_dir, with every key above checked for presence and type.
nlohmann::json load_checkpoint_config(const std::string& out_dir);
// The same checks on the text of a config.json (`path` names it in messages).
nlohmann::json parse_checkpoint_config(const std::string& text, const std::string& path);

// Refuses (InvalidArgument) a checkpoint configuration whose kind, dimension or model
// configuration differs from model's: "checkpoint '<dir>' was trained on 2-D data, this run has 1-D".
void check_checkpoint_matches(const nlohmann::json& config, const GenerativeModel& model,
                              const std::string& where);

// Restores everything save_checkpoint wrote into the live state (model, EMA, best weights,
// optimiser, batch sampler, torch's default CPU generator) after checking that it matches the
// model and is intact, and returns its config.json. Nothing is changed when a file is missing,
// corrupt, non-finite or mismatched.
nlohmann::json load_checkpoint(const std::string& out_dir, const TrainingState& state);

// The bytes of an attachment (CheckpointMeta::attachments) of the checkpoint in out_dir, checked
// against its recorded size and CRC-32; IoError when it is missing or damaged.
std::string read_checkpoint_attachment(const std::string& out_dir, const std::string& name);

// Which weights load_weights takes.
enum class Weights {
  kBest,     // the best validated weights; without them, as kAverage
  kAverage,  // the moving average; without it, as kLast
  kLast,     // the last iterate
};

// For sampling and evaluation: loads the chosen weights of the checkpoint in out_dir into model
// (built from load_checkpoint_config(out_dir)["model"]), checked as load_checkpoint checks them.
void load_weights(const std::string& out_dir, GenerativeModel& model, Weights which = Weights::kBest);

}  // namespace sdegen
