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
#include <string>
#include <vector>

#include "sdegen/model/generative_model.h"
#include "sdegen/train/options.h"
#include "sdegen/train/progress.h"

namespace sdegen {

// Metrics of a model on the validation rows, computed with the averaged weights swapped in and
// the model in eval mode, and torch's default generator on a fixed stream of its own (the same
// noise at every validation, and the training draws undisturbed).
struct Validator {
  std::vector<std::string> columns;  // log.csv column names, in the order fn returns the values
  std::function<std::vector<double>(GenerativeModel& model, const torch::Tensor& val)> fn;
};

// "val_nelbo": the mean over the rows of -model.elbo(val, time_samples).total(), evaluated `chunk`
// rows at a time. Runs under NoGradGuard unless the model's elbo fails without autograd (e.g.
// it differentiates through the network), in which case it keeps autograd on from then on.
Validator nelbo_validator(int64_t time_samples = 1, int64_t chunk = 4096);

struct TrainSetup {
  torch::Tensor val;         // optional validation rows [m, d]; validation runs every val_every steps
  bool resume = false;       // continue from out_dir's checkpoint (refused when there is none)
  bool overwrite = false;    // let a fresh run replace a checkpoint already in out_dir
  nlohmann::json extra = nlohmann::json::object();  // stored in the checkpoint: data statistics, spec
  Validator validator = nelbo_validator();
  ProgressFn progress = stderr_progress();  // nullptr: silent
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
};

// Trains model on data [n, d] (float or double; converted to the model's dtype and device) for
// options.steps steps in all, writing to out_dir (created if needed):
//   log.csv      step, loss, lr, grad_norm, seconds[, validation columns]: a row every log_every
//                steps, at each validation and at the last step; loss and grad_norm are means
//                over the steps since the previous row, seconds is cumulative. A resumed run keeps
//                the rows up to its checkpoint's step and appends.
//   checkpoint/  every checkpoint_every steps and at the end (train/checkpoint.h), with
//                model.config(), the options and setup.extra.
// Refuses bad options, data of the wrong shape or with non-finite values, a fresh run into a
// directory holding a checkpoint (unless setup.overwrite), a resume without one or whose model
// differs. A non-finite loss or gradient norm throws NumericError naming the step; the state
// before that step is saved as the checkpoint first when its weights are finite, otherwise the
// checkpoint on disk is left as it was. On return the model holds the last iterate (not the
// average: load_weights gives that). Sets torch's thread count to options.threads for the run.
TrainResult train(const ModelPtr& model, const torch::Tensor& data, const TrainOptions& options,
                  const std::string& out_dir, const TrainSetup& setup = {});

}  // namespace sdegen
