#include "sdegen/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/core/vmath.h"
#include "sdegen/train/batches.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/ema.h"
#include "sdegen/train/log.h"
#include "sdegen/train/optim.h"

namespace sdegen {

namespace {

// Independent seeds for the batch, noise and validation streams (splitmix64 of seed and stream).
enum Stream : uint64_t { kBatches = 1, kNoise = 2, kValidation = 3 };
uint64_t stream_seed(uint64_t seed, Stream stream) {
  uint64_t z = seed + static_cast<uint64_t>(stream) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

torch::Tensor default_generator_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_default_generator_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

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

bool all_parameters_finite(const torch::nn::Module& model, const Ema* ema) {
  for (const auto& p : model.parameters())
    if (!all_finite(p)) return false;
  if (ema)
    for (const auto& name : ema->parameter_names())
      if (!all_finite(ema->average(name))) return false;
  return true;
}

// Swaps the average in, puts the model in eval mode and the default generator on the
// validation stream; undoes all three on leaving, also when the validator throws.
class ValidationScope {
 public:
  ValidationScope(GenerativeModel& model, Ema* ema, uint64_t seed)
      : model_(model), ema_(ema), saved_state_(default_generator_state()) {
    {
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_current_seed(seed);
    }
    if (ema_) ema_->swap(model_);
    model_.eval();
  }
  ~ValidationScope() {
    model_.train();
    if (ema_) ema_->swap(model_);
    set_default_generator_state(saved_state_);
  }
  ValidationScope(const ValidationScope&) = delete;
  ValidationScope& operator=(const ValidationScope&) = delete;

 private:
  GenerativeModel& model_;
  Ema* ema_;
  torch::Tensor saved_state_;
};

std::vector<Metric> validate(GenerativeModel& model, Ema* ema, const Validator& validator,
                             const torch::Tensor& val, uint64_t seed) {
  std::vector<double> values;
  {
    ValidationScope scope(model, ema, seed);
    values = validator.fn(model, val);
  }
  SDEGEN_CHECK(values.size() == validator.columns.size(), "validator returned ", values.size(),
               " values for the ", validator.columns.size(), " columns ", join(validator.columns));
  std::vector<Metric> metrics;
  for (size_t i = 0; i < values.size(); ++i) metrics.push_back({validator.columns[i], values[i]});
  return metrics;
}

torch::Tensor checked_rows(const torch::Tensor& x, const GenerativeModel& model, const torch::Tensor& like,
                           const char* what) {
  SDEGEN_CHECK(x.dim() == 2 && x.size(0) >= 1 && x.size(1) == model.dim(), "train: ", what,
               " data must have shape [n >= 1, ", model.dim(), "] for this ", model.dim(),
               "-D model, got ", x.sizes());
  SDEGEN_CHECK(x.is_floating_point(), "train: ", what, " data must be floating point, got ", x.scalar_type());
  SDEGEN_CHECK(all_finite(x), "train: ", what, " data contain NaN or infinite values");
  return x.detach().to(like.device(), like.scalar_type()).contiguous();
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
  if (!setup.resume && !setup.overwrite && has_checkpoint(out_dir))
    throw InvalidArgument("output directory '" + out_dir +
                          "' already holds a checkpoint; resume it or choose another directory");
  if (setup.resume && !has_checkpoint(out_dir))
    throw IoError("cannot resume: no checkpoint in '" + out_dir + "' (expected the directory '" +
                  checkpoint_dir(out_dir) + "')");
  ThreadsGuard threads(options.threads());
  std::filesystem::create_directories(out_dir);

  model->train();
  auto optimizer = make_optimizer(options, params);
  BatchSampler batches(x.size(0), options.batch(), stream_seed(options.seed(), kBatches));
  std::optional<Ema> ema;
  if (options.ema_decay() > 0) ema.emplace(*model, options.ema_decay());
  Ema* ema_ptr = ema ? &*ema : nullptr;
  const TrainingState state{*model, *optimizer, batches, ema_ptr};

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
    for (auto& group : optimizer->param_groups()) group.set_options(optimizer->defaults().clone());
  } else {
    torch::manual_seed(stream_seed(options.seed(), kNoise));
  }

  std::vector<std::string> columns = {"loss", "lr", "grad_norm", "seconds"};
  if (validating) columns.insert(columns.end(), setup.validator.columns.begin(), setup.validator.columns.end());
  TrainLog log((std::filesystem::path(out_dir) / "log.csv").string(), columns,
               setup.resume ? result.start_step : -1);

  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  int64_t saved_step = setup.resume ? result.start_step : -1;
  auto save = [&](int64_t step) {
    save_checkpoint(out_dir, state, {step, earlier_seconds + elapsed(), options, setup.extra});
    saved_step = step;
  };
  // A non-finite loss or gradient at `step`: roll the generators back to before it, keep the
  // state after step - 1 as the checkpoint if it is finite, and report.
  auto fail = [&](int64_t step, const char* what, double value, const BatchSampler& batches_before,
                  const torch::Tensor& generator_before) {
    batches = batches_before;
    set_default_generator_state(generator_before);
    std::string where = "no checkpoint was written";
    try {
      if (saved_step != step - 1 && all_parameters_finite(*model, ema_ptr)) save(step - 1);
      if (has_checkpoint(out_dir))
        where = "the last good checkpoint is '" + find_checkpoint(out_dir) + "' (step " +
                std::to_string(load_checkpoint_config(out_dir).at("step").get<int64_t>()) + ")";
    } catch (const Error& e) {
      where = std::string("saving the state before it failed: ") + e.what();
    }
    throw NumericError(detail::concat(what, " became ", value, " at step ", step, "; ", where, "; lower --lr or ",
                                      options.grad_clip() > 0 ? "--grad-clip" : "set --grad-clip"));
  };

  Window window;
  for (int64_t step = result.start_step + 1; step <= options.steps(); ++step) {
    const double lr = learning_rate(options, step);
    for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
    const BatchSampler batches_before = batches;
    const torch::Tensor generator_before = default_generator_state();

    const torch::Tensor y = x.index_select(0, batches.next().to(x.device()));
    const double loss_value =
        options.fused() ? model->loss_and_gradient(y) : autograd_loss_and_gradient(*model, y);
    if (!std::isfinite(loss_value)) fail(step, "loss", loss_value, batches_before, generator_before);
    const double grad_norm = clip_gradients(params, options.grad_clip());
    if (!std::isfinite(grad_norm)) fail(step, "gradient norm", grad_norm, batches_before, generator_before);
    if (options.fused()) optimizer_step(*optimizer);
    else optimizer->step();
    if (ema) ema->update(*model);

    result.losses.push_back(loss_value);
    window.add(loss_value, grad_norm);
    const bool last = step == options.steps();
    const bool validate_now =
        validating && (last || (options.val_every() > 0 && step % options.val_every() == 0));
    std::vector<Metric> metrics;
    if (validate_now) {
      metrics = validate(*model, ema_ptr, setup.validator, val, stream_seed(options.seed(), kValidation));
      result.validation = metrics;
    }
    const bool log_now = last || validate_now || step % options.log_every() == 0;
    const double seconds = earlier_seconds + elapsed();
    StepReport report;
    if (log_now) {
      std::vector<std::optional<double>> row = {window.mean_loss(), lr, window.mean_grad_norm(), seconds};
      for (size_t i = 0; validating && i < setup.validator.columns.size(); ++i)
        row.push_back(validate_now ? std::optional<double>(metrics[i].value) : std::nullopt);
      log.write(step, row);
      report.mean_loss = window.mean_loss();
      window = Window();
    }
    if (last || (options.checkpoint_every() > 0 && step % options.checkpoint_every() == 0)) save(step);

    if (setup.progress) {
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
      setup.progress(report);
    }
  }

  result.steps = options.steps();
  if (!result.losses.empty()) result.final_loss = result.losses.back();
  result.seconds = elapsed();
  result.total_seconds = earlier_seconds + result.seconds;
  result.checkpoint = find_checkpoint(out_dir);
  return result;
}

}  // namespace sdegen
