#include "sdegen/train/options.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/limits.h"

namespace sdegen {

std::vector<std::string> optimizer_names() { return {"adam", "adamw"}; }
std::vector<std::string> lr_decay_names() { return {"none", "cosine", "linear"}; }

void check_train_options(const TrainOptions& o) {
  SDEGEN_CHECK(o.steps() >= 1, "train option 'steps' must be >= 1, got ", o.steps());
  SDEGEN_CHECK(o.batch() >= 1, "train option 'batch' must be >= 1, got ", o.batch());
  SDEGEN_CHECK(std::isfinite(o.lr()) && o.lr() > 0, "train option 'lr' must be > 0, got ", o.lr());
  check_name("optimizer", o.optimizer(), optimizer_names());
  SDEGEN_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0,
               "train option 'weight_decay' must be >= 0, got ", o.weight_decay());
  SDEGEN_CHECK(o.beta1() >= 0 && o.beta1() < 1, "train option 'beta1' must be in [0, 1), got ",
               o.beta1());
  SDEGEN_CHECK(o.beta2() >= 0 && o.beta2() < 1, "train option 'beta2' must be in [0, 1), got ",
               o.beta2());
  SDEGEN_CHECK(std::isfinite(o.eps()) && o.eps() > 0, "train option 'eps' must be > 0, got ", o.eps());
  SDEGEN_CHECK(o.warmup_steps() >= 0 && o.warmup_steps() <= o.steps(),
               "train option 'warmup_steps' must be in [0, steps = ", o.steps(), "], got ",
               o.warmup_steps());
  check_name("learning-rate decay", o.decay(), lr_decay_names());
  SDEGEN_CHECK(o.lr_min() >= 0 && o.lr_min() <= o.lr(), "train option 'lr_min' must be in [0, lr = ",
               o.lr(), "], got ", o.lr_min());
  SDEGEN_CHECK(std::isfinite(o.grad_clip()) && o.grad_clip() >= 0,
               "train option 'grad_clip' must be >= 0 (0: off), got ", o.grad_clip());
  SDEGEN_CHECK(o.ema_decay() >= 0 && o.ema_decay() < 1,
               "train option 'ema_decay' must be in [0, 1) (0: off), got ", o.ema_decay());
  SDEGEN_CHECK(o.log_every() >= 1, "train option 'log_every' must be >= 1, got ", o.log_every());
  SDEGEN_CHECK(o.checkpoint_every() >= 0,
               "train option 'checkpoint_every' must be >= 0 (0: only at the end), got ",
               o.checkpoint_every());
  SDEGEN_CHECK(o.val_every() >= 0, "train option 'val_every' must be >= 0 (0: only at the end), got ",
               o.val_every());
  SDEGEN_CHECK(o.patience() >= 0, "train option 'patience' must be >= 0 (0: off), got ", o.patience());
  SDEGEN_CHECK(o.threads() >= 1 && o.threads() <= max_threads(), "train option 'threads' must be in [1, ",
               max_threads(), "] (4 per CPU of this machine), got ", o.threads());
}

double learning_rate(const TrainOptions& o, int64_t step) {
  SDEGEN_CHECK(step >= 1 && step <= o.steps(), "learning_rate: step must be in [1, ", o.steps(),
               "], got ", step);
  const int64_t warmup = o.warmup_steps();
  if (step <= warmup) return o.lr() * static_cast<double>(step) / static_cast<double>(warmup);
  const double p = static_cast<double>(step - warmup) / static_cast<double>(o.steps() - warmup);
  const double span = o.lr() - o.lr_min();
  if (o.decay() == "linear") return o.lr_min() + span * (1.0 - p);
  if (o.decay() == "cosine") return o.lr_min() + span * 0.5 * (1.0 + std::cos(M_PI * p));
  return o.lr();
}

// ---- JSON ----

namespace {

const std::vector<std::string>& train_json_keys() {
  static const std::vector<std::string> keys = {
      "steps",   "batch",     "lr",        "optimizer",        "weight_decay", "betas",
      "eps",     "warmup_steps", "decay",  "lr_min",           "grad_clip",    "ema_decay",
      "seed",    "log_every", "val_every", "checkpoint_every", "threads", "fused", "patience"};
  return keys;
}

const nlohmann::json& field(const nlohmann::json& j, const std::string& key) {
  const auto it = j.find(key);
  SDEGEN_CHECK(it != j.end(), "train options: missing key '", key, "'");
  return *it;
}

int64_t int_field(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json& v = field(j, key);
  SDEGEN_CHECK(v.is_number_integer(), "train options: '", key, "' must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

double number(const nlohmann::json& v, const std::string& key) {
  SDEGEN_CHECK(v.is_number(), "train options: '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

std::string string_field(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json& v = field(j, key);
  SDEGEN_CHECK(v.is_string(), "train options: '", key, "' must be a string, got ", v.dump());
  return v.get<std::string>();
}

}  // namespace

nlohmann::json to_json(const TrainOptions& o) {
  return {{"steps", o.steps()},
          {"batch", o.batch()},
          {"lr", o.lr()},
          {"optimizer", o.optimizer()},
          {"weight_decay", o.weight_decay()},
          {"betas", {o.beta1(), o.beta2()}},
          {"eps", o.eps()},
          {"warmup_steps", o.warmup_steps()},
          {"decay", o.decay()},
          {"lr_min", o.lr_min()},
          {"grad_clip", o.grad_clip()},
          {"ema_decay", o.ema_decay()},
          {"seed", o.seed()},
          {"log_every", o.log_every()},
          {"checkpoint_every", o.checkpoint_every()},
          {"val_every", o.val_every()},
          {"threads", o.threads()},
          {"fused", o.fused()},
          {"patience", o.patience()}};
}

TrainOptions train_options_from_json(const nlohmann::json& j) {
  SDEGEN_CHECK(j.is_object(), "train options: expected a JSON object, got ", j.dump());
  for (const auto& item : j.items()) check_name("train option", item.key(), train_json_keys());
  const nlohmann::json betas = field(j, "betas");
  SDEGEN_CHECK(betas.is_array() && betas.size() == 2,
               "train options: 'betas' must be an array of two numbers, got ", betas.dump());
  const nlohmann::json seed = field(j, "seed");
  SDEGEN_CHECK(seed.is_number_unsigned() || (seed.is_number_integer() && seed.get<int64_t>() >= 0),
               "train options: 'seed' must be a non-negative integer, got ", seed.dump());
  TrainOptions o = TrainOptions()
                       .steps(int_field(j, "steps"))
                       .batch(int_field(j, "batch"))
                       .lr(number(field(j, "lr"), "lr"))
                       .optimizer(string_field(j, "optimizer"))
                       .weight_decay(number(field(j, "weight_decay"), "weight_decay"))
                       .beta1(number(betas[0], "betas[0]"))
                       .beta2(number(betas[1], "betas[1]"))
                       .eps(number(field(j, "eps"), "eps"))
                       .warmup_steps(int_field(j, "warmup_steps"))
                       .decay(string_field(j, "decay"))
                       .lr_min(number(field(j, "lr_min"), "lr_min"))
                       .grad_clip(number(field(j, "grad_clip"), "grad_clip"))
                       .ema_decay(number(field(j, "ema_decay"), "ema_decay"))
                       .seed(seed.get<uint64_t>())
                       .log_every(int_field(j, "log_every"))
                       .checkpoint_every(int_field(j, "checkpoint_every"))
                       .val_every(int_field(j, "val_every"))
                       .threads(int_field(j, "threads"));
  // Optional, so that checkpoints written before the option existed still load.
  if (const auto it = j.find("fused"); it != j.end()) {
    SDEGEN_CHECK(it->is_boolean(), "train options: 'fused' must be true or false, got ", it->dump());
    o.fused(it->get<bool>());
  }
  if (const auto it = j.find("patience"); it != j.end()) o.patience(int_field(j, "patience"));
  check_train_options(o);
  return o;
}

}  // namespace sdegen
