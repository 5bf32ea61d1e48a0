#pragma once
// sdegen compare, shared between its command (compare_cmd.cpp: data, training, evaluation) and
// its report (compare_report.cpp: the table, compare.json, the plots).
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sdegen/eval/evaluate.h"

namespace sdegen::app {

struct CompareArgs {
  std::string data = "laplace5";
  std::string test;  // a CSV of test rows; empty: held out from --data (CSV) or drawn (built-in)
  std::vector<std::string> models = {"sde", "ode", "flow", "diffusion", "score", "vdm"};
  double budget = 50.0;  // training seconds per model; 0: each model's recipe (steps, early stopping)
  int64_t n_train = 1000, n_val = 8000;
  double val_fraction = 0.2;  // of the training rows, held out for validation
  double test_fraction = 0.2; // of a CSV without --test, held out for the test
  int64_t elbo_time_samples = 16;
  uint64_t seed = 0;
  int threads = 1;
  std::string device = "cpu";
  std::string out = "runs/compare";
  bool quick = false, plots = true, overwrite = false, baselines = true;
};

// Training, validation and test data, all in data units. Validation rows choose the kept weights
// and stop training early (models), and choose the classical baselines' settings.
struct CompareData {
  torch::Tensor train, val;
  EvalData eval;  // the test rows (x) and the sample metrics' target and reference
};

struct Row {
  std::string model;
  bool baseline = false;  // a classical estimator: log-likelihood only
  std::string choice;     // a baseline's setting chosen on validation
  int64_t steps = 0, best_step = -1;
  bool stopped_early = false;
  double train_seconds = 0;
  EvalResult eval;
  // Sample distance (W1 in 1-D, sliced W otherwise) at 10 and 50 evaluations and adaptive.
  double at10 = NAN, at50 = NAN, adaptive = NAN;
  int64_t adaptive_nfe = 0;
  std::string fixed_solver;
};

// W1 of samples to the test rows (1-D), sliced Wasserstein otherwise.
double distance(const torch::Tensor& samples, const EvalData& data);

void print_table(const std::vector<Row>& rows, const CompareData& data);
void write_record(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data);
void make_plots(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data);

}  // namespace sdegen::app
