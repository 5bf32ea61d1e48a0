// Evaluation inside training: the scope that isolates it, the default metric (the negative ELBO
// of the held-out rows) and the loss probe.
#include <algorithm>
#include <memory>
#include <optional>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/train/validation.h"

namespace sdegen {

ValidationScope::ValidationScope(GenerativeModel& model, Ema* ema, uint64_t seed)
    : model_(model), ema_(ema), saved_state_(default_generator_state()) {
  seed_default_generator(seed);
  if (ema_) ema_->swap(model_);
  model_.eval();
}

ValidationScope::~ValidationScope() {
  model_.train();
  if (ema_) ema_->swap(model_);
  set_default_generator_state(saved_state_);
}

double probe_loss(GenerativeModel& model, Ema* ema, const torch::Tensor& rows, const Condition& condition,
                  uint64_t seed) {
  ValidationScope scope(model, ema, seed);
  return model.loss(rows, condition).detach().item<double>();
}

Validator nelbo_validator(int64_t time_samples, int64_t chunk) {
  SDEGEN_CHECK(time_samples >= 1, "nelbo_validator: time_samples must be >= 1, got ", time_samples);
  SDEGEN_CHECK(chunk >= 1, "nelbo_validator: chunk must be >= 1, got ", chunk);
  // Shared by copies of the validator: once the elbo has needed autograd, do not retry without.
  auto needs_grad = std::make_shared<bool>(false);
  auto mean_nelbo = [time_samples, chunk](GenerativeModel& model, const torch::Tensor& val, const Condition& rows,
                                          bool grad) {
    std::optional<torch::NoGradGuard> no_grad;
    if (!grad) no_grad.emplace();
    const int64_t n = val.size(0);
    double sum = 0;
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t end = std::min(n, start + chunk);
      const Condition condition = rows.slice(start, end - start);
      sum += -model.elbo(val.slice(0, start, end), time_samples, condition).total().detach().sum().item<double>();
    }
    return sum / static_cast<double>(n);
  };
  Validator v;
  v.columns = {"val_nelbo"};
  v.fn = [needs_grad, mean_nelbo](GenerativeModel& model, const torch::Tensor& val,
                                  const Condition& condition) -> std::vector<double> {
    if (!*needs_grad) {
      const torch::Tensor state = default_generator_state();
      try {
        return {mean_nelbo(model, val, condition, false)};
      } catch (const c10::Error&) {
        // Autograd was needed inside elbo: retry with it, on the same noise.
        *needs_grad = true;
        set_default_generator_state(state);
      }
    }
    return {mean_nelbo(model, val, condition, true)};
  };
  return v;
}

}  // namespace sdegen
