#pragma once
// The training loop: mini-batches (train/batches.h), Adam or AdamW with warm-up and decay
// (train/options.h), gradient clipping, a moving average of the weights (train/ema.h), a CSV log,
// validation, progress, and checkpoints from which a run resumes exactly (train/checkpoint.h).
//
// Reproducibility: a fresh run seeds its batch generator and torch's default CPU generator (the
// model's noise draws) from options.seed, on streams of their own; with threads = 1 the same
// model, data and options give the same losses, and a run resumed from a checkpoint continues
// with exactly the losses the uninterrupted run would have had.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "sdegen/model/generative_model.h"
#include "sdegen/train/distributed.h"
#include "sdegen/train/options.h"
#include "sdegen/train/progress.h"
#include "sdegen/train/validation.h"

namespace sdegen {

struct TrainSetup {
  torch::Tensor val;         // optional validation rows [m, *shape]; validation runs every val_every steps
  // Class-conditional models: the label of each training row [n] and validation row [m] (int64
  // in [0, num_classes)); undefined for unconditional ones.
  torch::Tensor labels, val_labels;
  // Models with a condition vector (condition_dim() = k > 0): the observed values that condition
  // each training row [n, k] and validation row [m, k]; undefined for models without one.
  torch::Tensor conditions, val_conditions;
  // A given coupling (reflow, train/reflow.h): the prior point paired with each training row,
  // [n, *shape]; undefined: the model draws its own.
  torch::Tensor sources;
  bool resume = false;       // continue from out_dir's checkpoint (refused when there is none)
  bool overwrite = false;    // let a fresh run replace a checkpoint already in out_dir
  nlohmann::json extra = nlohmann::json::object();  // stored in the checkpoint: data statistics, spec
  std::map<std::string, std::string> attachments;   // files stored in the checkpoint (CheckpointMeta)
  Validator validator = nelbo_validator();
  ProgressFn progress = stderr_progress();  // nullptr: silent
  // Data-parallel training (train/distributed.h): this process's place among the ranks; null: one
  // process. Every rank calls train() with the same model, data, options and setup; options.batch
  // is the global batch (at least one row per rank), split into contiguous shares; validation rows
  // are split too when the validator's figures are means over rows. Rank 0 alone calls progress
  // and on_start and writes log.csv and the checkpoints; every rank returns the same losses.
  CommunicatorPtr group;
  // Called once every input is checked (and a resumed state loaded), before anything is written:
  // where a caller records the run (a refused run then leaves no trace).
  std::function<void()> on_start;
};

struct TrainResult {
  int64_t start_step = 0;  // the checkpoint's step when resumed, else 0
  int64_t steps = 0;       // the step reached (options.steps)
  double final_loss = std::numeric_limits<double>::quiet_NaN();  // the last step's; NaN if none ran
  double seconds = 0;        // this run's wall time
  double total_seconds = 0;  // earlier runs of a resumed training included
  bool resumed = false;
  std::vector<double> losses;        // the loss of each step start_step + 1 .. steps
  std::vector<Metric> validation;    // the last validation's metrics; empty when none ran
  std::string checkpoint;            // the final checkpoint's directory
  // The weights kept for sampling and evaluation (with validation): the step whose validation
  // figure (the validator's first column) was lowest, and that figure; -1 and NaN without.
  int64_t best_step = -1;
  double best_value = std::numeric_limits<double>::quiet_NaN();
  bool stopped_early = false;        // options.patience validations passed without a new best
  // Data-parallel: the wall time this run spent summing gradients over the ranks (waiting for the
  // slowest rank included); 0 in one process.
  double allreduce_seconds = 0;
};

// Trains model on data [n, *shape] (float or double; converted to the model's dtype and device) for
// options.steps steps in all, writing to out_dir (created if needed):
//   log.csv      step, loss, lr, grad_norm, seconds[, validation columns]: a row every log_every
//                steps, at each validation and at the last step; loss and grad_norm are means
//                over the steps since the previous row, seconds is cumulative. A resumed run keeps
//                the rows up to its checkpoint's step and appends.
//   checkpoint/  every checkpoint_every steps (0: at each validation) and at the end
//                (train/checkpoint.h), with model.config(), the options and setup.extra.
// With validation rows, the validator runs every val_every steps and at the end, on the averaged
// weights; the weights with the lowest first column so far are kept in the checkpoint
// (best.pt: what load_weights gives by default), and training stops early after
// options.patience validations without a new best.
// A checkpoint only ever replaces the previous one with a state known to be good: finite weights,
// averages and moments, a finite loss of the live and the averaged weights on a fixed probe batch,
// and a validation figure that is not NaN (+infinity, a validator's "no better than anything",
// counts as no improvement). A non-finite loss or gradient norm, a NaN or -infinity validation
// figure, or a state that fails those checks, throws NumericError naming the step and the last
// good checkpoint, which is left on disk as it was.
// Refuses bad options, data of the wrong shape or with non-finite values, a fresh run into a
// directory holding a checkpoint (unless setup.overwrite), a resume without one or whose model
// differs or whose files are damaged. On return the model holds the last iterate (load_weights
// gives the kept ones). Sets torch's thread count to options.threads for the run.
TrainResult train(const ModelPtr& model, const torch::Tensor& data, const TrainOptions& options,
                  const std::string& out_dir, const TrainSetup& setup = {});

}  // namespace sdegen
