#pragma once
// Evaluating a model during training without disturbing it: the averaged weights swapped in, eval
// mode, and torch's default generator on a fixed stream of its own, so that the same noise is
// drawn at every evaluation (figures comparable from one to the next) and the training draws are
// left as they were.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sdegen/model/generative_model.h"
#include "sdegen/train/ema.h"

namespace sdegen {

// Swaps the average in (when ema is not null), puts the model in eval mode and seeds torch's
// default generator with `seed`; undoes all three on leaving, also when an exception leaves.
class ValidationScope {
 public:
  ValidationScope(GenerativeModel& model, Ema* ema, uint64_t seed);
  ~ValidationScope();
  ValidationScope(const ValidationScope&) = delete;
  ValidationScope& operator=(const ValidationScope&) = delete;

 private:
  GenerativeModel& model_;
  Ema* ema_;
  torch::Tensor saved_state_;
};

// Metrics of a model on the validation rows, computed inside a ValidationScope. The first column
// is the figure training judges the weights by (lower is better): the best weights, early stopping.
struct Validator {
  std::vector<std::string> columns;  // log.csv column names, in the order fn returns the values
  // val [m, *shape]; condition: the rows' labels [m] and condition vectors [m, k] where the model
  // takes them, else empty.
  std::function<std::vector<double>(GenerativeModel& model, const torch::Tensor& val, const Condition& condition)> fn;
  // Whether each figure is a mean over the rows, so that data-parallel training may split the rows
  // across processes and combine their figures weighted by rows (else every rank evaluates all).
  bool mean_over_rows = true;
};

// "val_nelbo": the mean over the rows of -model.elbo(val, time_samples).total(), evaluated `chunk`
// rows at a time. Runs under NoGradGuard unless the model's elbo fails without autograd (e.g.
// it differentiates through the network), in which case it keeps autograd on from then on.
Validator nelbo_validator(int64_t time_samples = 1, int64_t chunk = 4096);

// model.loss(rows) inside a ValidationScope (autograd on, since some losses differentiate
// through the network; nothing is accumulated): a cheap check that a set of weights still gives
// a finite loss.
double probe_loss(GenerativeModel& model, Ema* ema, const torch::Tensor& rows, const Condition& condition,
                  uint64_t seed);

}  // namespace sdegen
