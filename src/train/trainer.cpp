#include "sdegen/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include "sdegen/core/check.h"
#include "sdegen/core/shard.h"
#include "sdegen/core/tensor.h"
#include "sdegen/core/vmath.h"
#include "sdegen/train/batches.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/ema.h"
#include "sdegen/train/log.h"
#include "sdegen/train/optim.h"
#include "train_inputs.h"

namespace sdegen {

namespace {

using detail::checked_conditions;  // the input checks: train_inputs.h
using detail::checked_labels;
using detail::checked_rows;

// Independent seeds for the batch, noise, validation and probe streams (core/tensor.h).
enum Stream : uint64_t { kBatches = 1, kNoise = 2, kValidation = 3, kProbe = 4 };

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int64_t threads) : previous_(torch::get_num_threads()) {
    torch::set_num_threads(static_cast<int>(threads));
    vmath::set_blas_threads(static_cast<int>(threads));
  }
  ~ThreadsGuard() {
    torch::set_num_threads(previous_);
    vmath::set_blas_threads(previous_);
  }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  int previous_;
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<torch::Tensor>& params) {
  if (o.optimizer() == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(o.lr())
                    .betas({o.beta1(), o.beta2()})
                    .eps(o.eps())
                    .weight_decay(o.weight_decay()));
  return std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(o.lr())
                  .betas({o.beta1(), o.beta2()})
                  .eps(o.eps())
                  .weight_decay(o.weight_decay()));
}

std::vector<double> run_validator(GenerativeModel& model, Ema* ema, const Validator& validator,
                                  const torch::Tensor& val, const Condition& val_condition, uint64_t seed) {
  std::vector<double> values;
  {
    ValidationScope scope(model, ema, seed);
    values = validator.fn(model, val, val_condition);
  }
  SDEGEN_CHECK(values.size() == validator.columns.size() && !values.empty(), "validator returned ",
               values.size(), " values for the ", validator.columns.size(), " columns ",
               join(validator.columns));
  return values;
}

// The validator's figures; with ranks and figures that are means over rows, each rank evaluates
// its share of the rows (on noise of its own) and the means are combined weighted by rows.
std::vector<Metric> validate(GenerativeModel& model, Ema* ema, const Validator& validator,
                             const torch::Tensor& val, const Condition& val_condition, uint64_t seed,
                             Communicator* group) {
  std::vector<double> values;
  if (group == nullptr || !validator.mean_over_rows) {
    values = run_validator(model, ema, validator, val, val_condition, seed);
  } else {
    const int64_t m = val.size(0), lo = m * group->rank() / group->size(), hi = m * (group->rank() + 1) / group->size();
    torch::Tensor sums = torch::zeros({static_cast<int64_t>(validator.columns.size())}, torch::kDouble);
    if (hi > lo) {
      const uint64_t rank_seed = group->rank() == 0 ? seed : stream_seed(seed, static_cast<uint64_t>(group->rank()));
      const std::vector<double> mine =
          run_validator(model, ema, validator, val.slice(0, lo, hi), val_condition.slice(lo, hi - lo), rank_seed);
      for (size_t i = 0; i < mine.size(); ++i) sums[static_cast<int64_t>(i)] = mine[i] * static_cast<double>(hi - lo);
    }
    group->all_reduce_sum(sums);
    for (int64_t i = 0; i < sums.size(0); ++i) values.push_back(sums[i].item<double>() / static_cast<double>(m));
  }
  std::vector<Metric> metrics;
  for (size_t i = 0; i < values.size(); ++i) metrics.push_back({validator.columns[i], values[i]});
  return metrics;
}

// Keeps a copy of the weights just validated (the average, when there is one) when their figure
// is the lowest so far; otherwise counts one more validation without improvement.
void track_best(BestWeights& best, const Metric& figure, int64_t step, GenerativeModel& model, Ema* ema) {
  if (!(figure.value < best.value)) {
    ++best.stale;
    return;
  }
  if (ema) ema->swap(model);
  try {
    best.weights.emplace(model, /*decay=*/0.0, /*warmup=*/false);
  } catch (...) {
    if (ema) ema->swap(model);
    throw;
  }
  if (ema) ema->swap(model);
  best.step = step, best.metric = figure.name, best.value = figure.value, best.stale = 0;
}

// Data-parallel: sums this rank's gradients (each weighted by its share of the global batch) and
// its loss over the ranks, so that every rank holds the global batch's gradients and returns its
// loss.
double reduce_step(Communicator& group, const std::vector<torch::Tensor>& params, double loss, double share) {
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : params) {
    torch::Tensor& g = p.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    else if (!g.is_contiguous()) g = g.contiguous();
    g.mul_(share);
    grads.push_back(g);
  }
  grads.push_back(torch::full({1}, loss * share, torch::kDouble));
  all_reduce_sum(group, grads);
  return grads.back().item<double>();
}

struct Window {  // sums since the previous log row
  double loss = 0, grad_norm = 0;
  int64_t count = 0;
  void add(double l, double g) { loss += l, grad_norm += g, ++count; }
  double mean_loss() const { return count ? loss / count : std::nan(""); }
  double mean_grad_norm() const { return count ? grad_norm / count : std::nan(""); }
};

}  // namespace

TrainResult train(const ModelPtr& model, const torch::Tensor& data, const TrainOptions& options,
                  const std::string& out_dir, const TrainSetup& setup) {
  check_train_options(options);
  SDEGEN_CHECK(model != nullptr, "train: no model");
  SDEGEN_CHECK(!out_dir.empty(), "train: no output directory");
  const std::vector<torch::Tensor> params = model->parameters();
  SDEGEN_CHECK(!params.empty(), "train: the '", model->kind(), "' model has no parameters to train");
  const torch::Tensor x = checked_rows(data, *model, params[0], "training");
  const bool validating = setup.val.defined() && static_cast<bool>(setup.validator.fn);
  const torch::Tensor val = validating ? checked_rows(setup.val, *model, params[0], "validation") : torch::Tensor();
  Condition conditions;  // of every training row
  conditions.labels = checked_labels(setup.labels, x.size(0), model->num_classes(), "training");
  conditions.vector = checked_conditions(setup.conditions, x, model->condition_dim(), "training");
  conditions.vector_finite = true;  // checked_conditions refused NaN and infinities
  const torch::Tensor sources = setup.sources.defined() ? checked_rows(setup.sources, *model, params[0], "source")
                                                        : torch::Tensor();
  SDEGEN_CHECK(!sources.defined() || sources.size(0) == x.size(0), "train: ", sources.defined() ? sources.size(0) : 0,
               " source rows for ", x.size(0), " training rows; each row needs its prior point");
  // Only the affine models pair data with prior draws; another model would ignore the pairs.
  const std::string kind = model->kind();
  SDEGEN_CHECK(!sources.defined() || kind == "flow" || kind == "diffusion" || kind == "score" || kind == "vdm",
               "train: given prior points (a reflow's pairs) train flow, diffusion, score or vdm; the '", kind,
               "' model draws no prior points to replace");
  Condition val_condition;
  if (validating) {
    val_condition.labels = checked_labels(setup.val_labels, val.size(0), model->num_classes(), "validation");
    val_condition.vector = checked_conditions(setup.val_conditions, val, model->condition_dim(), "validation");
    val_condition.vector_finite = true;
  }
  if (!setup.resume && !setup.overwrite && has_checkpoint(out_dir))
    throw InvalidArgument("output directory '" + out_dir +
                          "' already holds a checkpoint; resume it or choose another directory");
  if (setup.resume && !has_checkpoint(out_dir))
    throw IoError("cannot resume: no checkpoint in '" + out_dir + "' (expected the directory '" +
                  checkpoint_dir(out_dir) + "')");
  Communicator* group = setup.group.get();
  const bool writer = group == nullptr || group->rank() == 0;  // rank 0 alone writes and reports
  if (group)
    SDEGEN_CHECK(options.batch() >= group->size(), "train: the batch (", options.batch(),
                 ") is the global batch, split between the ", group->size(), " processes; it needs a row for each");
  ThreadsGuard threads(options.threads());

  model->train();
  if (group) {
    // One model: rank 0's initial weights (and buffers) on every rank.
    std::vector<torch::Tensor> state = params;
    for (const torch::Tensor& b : model->buffers()) state.push_back(b);
    broadcast_from_rank0(*group, state);
  }
  auto optimizer = make_optimizer(options, params);
  BatchSampler batches(x.size(0), options.batch(), stream_seed(options.seed(), kBatches));
  std::optional<Ema> ema;
  if (options.ema_decay() > 0) ema.emplace(*model, options.ema_decay());
  Ema* ema_ptr = ema ? &*ema : nullptr;
  BestWeights best;
  const TrainingState state{*model, *optimizer, batches, ema_ptr, validating ? &best : nullptr};

  TrainResult result;
  double earlier_seconds = 0;
  if (setup.resume) {
    const nlohmann::json config = load_checkpoint(out_dir, state);
    result.start_step = config.at("step").get<int64_t>();
    earlier_seconds = config.at("seconds").get<double>();
    result.resumed = true;
    SDEGEN_CHECK(result.start_step <= options.steps(), "cannot resume: the checkpoint in '", out_dir,
                 "' is at step ", result.start_step, ", beyond steps = ", options.steps());
    // This run's hyperparameters, not the checkpoint's (the moments are what carry over).
    for (auto& param_group : optimizer->param_groups()) param_group.set_options(optimizer->defaults().clone());
  } else {
    torch::manual_seed(stream_seed(options.seed(), kNoise));
  }
  // A resumed run's ranks read the same checkpoint; this confirms they did.
  if (group) check_replicas_agree(*group, params, "weights at the start");
  if (setup.on_start && writer) setup.on_start();
  if (writer) std::filesystem::create_directories(out_dir);

  std::vector<std::string> columns = {"loss", "lr", "grad_norm", "seconds"};
  if (validating) columns.insert(columns.end(), setup.validator.columns.begin(), setup.validator.columns.end());
  std::optional<TrainLog> log;
  if (writer)
    log.emplace((std::filesystem::path(out_dir) / "log.csv").string(), columns, setup.resume ? result.start_step : -1);

  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  // The fixed rows on which a state's loss must be finite before it may become the checkpoint.
  const torch::Tensor& probe_source = validating ? val : x;
  const int64_t probe_rows = std::min<int64_t>(256, probe_source.size(0));
  const torch::Tensor probe = probe_source.narrow(0, 0, probe_rows);
  const Condition probe_condition = (validating ? val_condition : conditions).slice(0, probe_rows);
  auto last_good = [&] {
    if (!has_checkpoint(out_dir)) return std::string("no checkpoint was written");
    try {
      return "the last good checkpoint is '" + find_checkpoint(out_dir) + "' (step " +
             std::to_string(load_checkpoint_config(out_dir).at("step").get<int64_t>()) + ")";
    } catch (const Error& e) {
      return std::string("the checkpoint on disk does not load: ") + e.what();
    }
  };
  auto advice = [&] {
    return std::string("lower --lr or ") + (options.grad_clip() > 0 ? "--grad-clip" : "set --grad-clip");
  };
  // Training has gone wrong at `step`: the checkpoint on disk stays as it is.
  auto fail = [&](int64_t step, const std::string& what, double value) {
    throw NumericError(detail::concat(what, " became ", value, " at step ", step, "; ", last_good(), "; ", advice()));
  };
  auto save = [&](int64_t step) {
    auto check_probe = [&](Ema* weights, const char* which) {
      const double loss = probe_loss(*model, weights, probe, probe_condition, stream_seed(options.seed(), kProbe));
      if (!std::isfinite(loss))
        fail(step, std::string("the loss of the ") + which + " weights on the probe rows (not saved)", loss);
    };
    check_probe(nullptr, "current");
    if (ema_ptr) check_probe(ema_ptr, "averaged");
    if (group) check_replicas_agree(*group, params, "weights at step " + std::to_string(step));
    if (!writer) return;
    try {
      save_checkpoint(out_dir, state, {step, earlier_seconds + elapsed(), options, setup.extra, setup.attachments});
    } catch (const NumericError& e) {
      throw NumericError(std::string(e.what()) + "; " + last_good() + "; " + advice());
    }
  };

  Window window;
  for (int64_t step = result.start_step + 1; step <= options.steps(); ++step) {
    const double lr = learning_rate(options, step);
    for (auto& param_group : optimizer->param_groups()) param_group.options().set_lr(lr);

    torch::Tensor rows = batches.next().to(x.device());
    // Data-parallel: every rank draws the global batch and keeps its share of the rows.
    std::optional<ShardScope> shard;
    if (group) {
      const auto [lo, hi] = shard_range(options.batch(), group->rank(), group->size());
      rows = rows.slice(0, lo, hi);
      shard.emplace(BatchShard{lo, hi - lo, options.batch()});
    }
    const torch::Tensor y = x.index_select(0, rows);
    Condition condition = conditions.select(rows);
    if (sources.defined()) condition.source = sources.index_select(0, rows);
    double loss_value = options.fused() ? model->loss_and_gradient(y, condition)
                                        : autograd_loss_and_gradient(*model, y, condition);
    shard.reset();
    if (group) {
      const auto reducing = std::chrono::steady_clock::now();
      loss_value = reduce_step(*group, params, loss_value,
                               static_cast<double>(rows.size(0)) / static_cast<double>(options.batch()));
      result.allreduce_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - reducing).count();
    }
    if (!std::isfinite(loss_value)) fail(step, "loss", loss_value);
    const double grad_norm = clip_gradients(params, options.grad_clip());
    if (!std::isfinite(grad_norm)) fail(step, "gradient norm", grad_norm);
    if (options.fused()) optimizer_step(*optimizer);
    else optimizer->step();
    if (ema) ema->update(*model);

    result.losses.push_back(loss_value);
    window.add(loss_value, grad_norm);
    const bool validate_now =
        validating && (step == options.steps() || (options.val_every() > 0 && step % options.val_every() == 0));
    std::vector<Metric> metrics;
    if (validate_now) {
      metrics = validate(*model, ema_ptr, setup.validator, val, val_condition, stream_seed(options.seed(), kValidation),
                         group);
      // +infinity is a validator's "no better than anything" (e.g. a likelihood solve that
      // diverged on a validation row); NaN or -infinity means the weights themselves went wrong.
      for (const Metric& m : metrics)
        if (std::isnan(m.value) || m.value == -std::numeric_limits<double>::infinity())
          fail(step, "validation figure " + m.name, m.value);
      track_best(best, metrics[0], step, *model, ema_ptr);
      result.validation = metrics;
    }
    result.stopped_early = validate_now && options.patience() > 0 && best.stale >= options.patience();
    const bool last = step == options.steps() || result.stopped_early;
    const bool log_now = last || validate_now || step % options.log_every() == 0;
    const double seconds = earlier_seconds + elapsed();
    StepReport report;
    if (log_now) {
      std::vector<std::optional<double>> row = {window.mean_loss(), lr, window.mean_grad_norm(), seconds};
      for (size_t i = 0; validating && i < setup.validator.columns.size(); ++i)
        row.push_back(validate_now ? std::optional<double>(metrics[i].value) : std::nullopt);
      if (log) log->write(step, row);
      report.mean_loss = window.mean_loss();
      window = Window();
    }
    const int64_t every = options.checkpoint_every();
    if (last || (every > 0 ? step % every == 0 : validate_now)) save(step);

    if (setup.progress && writer) {
      report.step = step;
      report.steps = options.steps();
      report.start_step = result.start_step;
      report.loss = loss_value;
      if (!log_now) report.mean_loss = window.mean_loss();
      report.lr = lr;
      report.grad_norm = grad_norm;
      report.seconds = seconds;
      report.steps_per_second = static_cast<double>(step - result.start_step) / std::max(elapsed(), 1e-9);
      report.log_row = log_now;
      report.validation = metrics;
      if (best.step >= 0) report.best = Metric{best.metric, best.value}, report.best_step = best.step;
      report.stopped_early = result.stopped_early;
      setup.progress(report);
    }
    result.steps = step;
    if (result.stopped_early) break;
  }

  if (!result.losses.empty()) result.final_loss = result.losses.back();
  if (result.losses.empty()) result.steps = result.start_step;
  result.best_step = best.step;
  if (best.step >= 0) result.best_value = best.value;
  result.seconds = elapsed();
  result.total_seconds = earlier_seconds + result.seconds;
  // Every rank returns once the final checkpoint is written.
  if (group) group->barrier();
  result.checkpoint = writer ? find_checkpoint(out_dir) : checkpoint_dir(out_dir);
  return result;
}

}  // namespace sdegen
