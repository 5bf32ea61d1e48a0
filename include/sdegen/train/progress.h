#pragma once
// What the training loop reports after each step, and the default way of showing it: a bar
// redrawn in place when stderr is a terminal, one plain line per log row otherwise (log files
// and CI output stay readable).
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace sdegen {

struct Metric {
  std::string name;
  double value;
};

struct StepReport {
  int64_t step = 0;        // the step just taken (1-based)
  int64_t steps = 0;       // the last step of the run
  int64_t start_step = 0;  // the step this run started (or resumed) from
  double loss = 0;         // this step's loss
  double mean_loss = 0;    // mean loss since the previous log row: log.csv's "loss" on a log row
  double lr = 0;           // the learning rate this step used
  double grad_norm = 0;    // global gradient norm before clipping
  double seconds = 0;      // training time so far, earlier runs of a resumed training included
  double steps_per_second = 0;  // over this run
  bool log_row = false;         // a log.csv row was written at this step
  std::vector<Metric> validation;  // the metrics, when validation ran at this step
  std::optional<Metric> best;      // the best validation figure so far (with validation)
  int64_t best_step = -1;          // and the step it was reached at
  bool stopped_early = false;      // this is the last step: patience ran out
};

using ProgressFn = std::function<void(const StepReport&)>;

// "1:02:03" or "2:03".
std::string format_duration(double seconds);

// Writes progress to `os`: with terminal, a bar redrawn in place (at most ten times a second,
// and at the last step) with step, loss, steps/s and time left, validation results on lines of
// their own; without, one line per log row.
ProgressFn stream_progress(std::ostream& os, bool terminal);

// stream_progress(std::cerr, isatty(stderr)).
ProgressFn stderr_progress();

}  // namespace sdegen
