#include "sdegen/model/consistency_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "sdegen/core/check.h"
#include "sdegen/core/shard.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/affine_model.h"

namespace sdegen {

std::vector<std::string> consistency_method_names() { return {"training", "distillation"}; }

namespace {

// sigma = b / a at t; infinite where a = 0.
double sigma_at(const AffineSchedule& s, double t) {
  const double a = s.a(t), b = s.b(t);
  return a == 0.0 ? std::numeric_limits<double>::infinity() : b / a;
}

}  // namespace

ConsistencyLevels consistency_levels(const AffineSchedule& schedule, int64_t n, double sigma_max, double sigma_min,
                                     double rho, double top) {
  SDEGEN_CHECK(n >= 2, "a consistency discretisation needs at least 2 levels, got ", n);
  SDEGEN_CHECK(rho > 0 && std::isfinite(rho), "rho must be positive and finite, got ", rho);
  SDEGEN_CHECK(top > 0 && top <= 1, "the top level must lie in (0, 1], got ", top);
  SDEGEN_CHECK(sigma_min > 0, "sigma_min must be positive, got ", sigma_min);
  const double s0 = sigma_at(schedule, 0.0), s_top = sigma_at(schedule, top);
  const double s_hi = std::min(sigma_max, s0);
  // Below sigma_min the rho grid's levels crowd into times that double precision cannot tell
  // apart; the top then follows as a level of its own.
  const double s_lo = std::max(sigma_min, s_top);
  SDEGEN_CHECK(std::isfinite(s_hi) && s_hi > s_lo, "sigma_max = ", sigma_max, " must be finite and above ", s_lo,
               " (sigma_min, or the data end's sigma = b / a under the '", schedule.name(), "' schedule)");
  const bool append_top = s_top < s_lo;
  const int64_t m = append_top ? n - 1 : n;  // levels on the rho grid
  ConsistencyLevels L;
  const double hi = std::pow(s_hi, 1.0 / rho), lo = std::pow(s_lo, 1.0 / rho);
  for (int64_t i = 0; i < m; ++i) {
    const double f = m == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(m - 1);
    L.sigma.push_back(i == 0 ? s_hi : i == m - 1 ? s_lo : std::pow(hi + f * (lo - hi), rho));
    L.t.push_back(schedule.inverse_lambda(-2.0 * std::log(L.sigma.back())));
  }
  // The ends exactly: the prior end where sigma_max reaches sigma(0), and the top.
  if (s_hi == s0) L.t[0] = 0.0;
  if (append_top) {
    L.sigma.push_back(s_top);
    L.t.push_back(top);
  } else {
    L.t[m - 1] = top;
  }
  for (int64_t i = 0; i + 1 < n; ++i)
    SDEGEN_CHECK(L.t[i] < L.t[i + 1], "consistency levels: ", n, " levels between sigma = ", s_hi, " and ", s_lo,
                 " are too close to tell apart in time under the '", schedule.name(), "' schedule (t_", i,
                 " = ", L.t[i], ", t_", i + 1, " = ", L.t[i + 1], "); use fewer levels");
  return L;
}

int64_t consistency_level_count(const ConsistencyOptions& o, int64_t step) {
  if (o.curriculum_steps <= 0) return o.levels_start + 1;
  const double doublings = std::log2(static_cast<double>(o.levels_end) / static_cast<double>(o.levels_start));
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(std::floor(o.curriculum_steps / (doublings + 1.0))));
  const int64_t k = std::min<int64_t>(step / per, 62);
  const double n = std::min(static_cast<double>(o.levels_start) * std::ldexp(1.0, static_cast<int>(k)),
                            static_cast<double>(o.levels_end));
  return static_cast<int64_t>(n) + 1;
}

ConsistencyModel::ConsistencyModel(ConsistencyOptions o) : options_(std::move(o)) {
  check_name("consistency method", options_.method, consistency_method_names());
  check_name("level sampling", options_.level_sampling, {"lognormal", "uniform"});
  check_name("consistency distance", options_.distance, {"pseudo-huber", "l2"});
  check_name("consistency inner map", options_.inner, {"edm", "prediction"});
  prediction_ = prediction_from_name(options_.prediction);
  check_name("dtype", options_.dtype, {"float32", "float64"});
  SDEGEN_CHECK(options_.sigma_data > 0 && std::isfinite(options_.sigma_data), "sigma_data must be positive, got ",
               options_.sigma_data);
  SDEGEN_CHECK(options_.levels_start >= 1 && options_.levels_end >= options_.levels_start,
               "consistency levels need 1 <= levels_start <= levels_end, got ", options_.levels_start, " and ",
               options_.levels_end);
  SDEGEN_CHECK(options_.curriculum_steps >= 0, "curriculum_steps must be >= 0, got ", options_.curriculum_steps);
  SDEGEN_CHECK(options_.lognormal_std > 0, "lognormal_std must be positive, got ", options_.lognormal_std);
  SDEGEN_CHECK(options_.huber_c >= 0, "huber_c must be >= 0 (0: 0.00054 sqrt(dim)), got ", options_.huber_c);
  schedule_ = make_schedule(options_.schedule, options_.schedule_options);
  SDEGEN_CHECK(schedule_->a(1.0) > 0, "the '", options_.schedule, "' schedule has a(1) = 0: no data end to map to");
  sigma_min_ = sigma_at(*schedule_, 1.0);
  // Checks sigma_max against the schedule now rather than at the first step.
  consistency_levels(*schedule_, 2, options_.sigma_max, options_.sigma_min, options_.rho);
  net_ = register_module("net", make_network(options_.net));
  steps_ = register_buffer("consistency_steps", torch::zeros({}, torch::kLong));
  to(options_.dtype == "float32" ? torch::kFloat : torch::kDouble);
}

int64_t ConsistencyModel::dim() const { return example_numel(net_->shape()); }

int64_t ConsistencyModel::steps_taken() const { return steps_.item<int64_t>(); }

ConsistencyModel::Coefficients ConsistencyModel::coefficients(const ScheduleCoefficients& c) const {
  const double sd2 = options_.sigma_data * options_.sigma_data;
  const torch::Tensor m = c.b - sigma_min_ * c.a, a2 = sd2 * c.a * c.a;
  const torch::Tensor root = torch::sqrt(c.b * c.b + a2), m2 = m * m;
  return {sd2 * c.a / (m2 + a2), options_.sigma_data * m / root, 1.0 / root, m2 / (m2 + a2)};
}

ConsistencyModel::Coefficients ConsistencyModel::coefficients(const torch::Tensor& t, const torch::Tensor& x) const {
  return coefficients(schedule_->coefficients(t.to(x.scalar_type())).like(x));
}

torch::Tensor ConsistencyModel::map(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition) const {
  if (options_.inner == "prediction") {
    const torch::Tensor tt = t.to(x.scalar_type());
    const ScheduleCoefficients s = schedule_->coefficients(tt.dim() == 0 ? tt.expand({x.size(0)}) : tt).like(x);
    const Coefficients c = coefficients(s);
    return c.skip * x + c.rest * convert(net_->forward(x, tt, condition), prediction_, Prediction::Data, x, s);
  }
  const Coefficients c = coefficients(t, x);
  return c.skip * x + c.out * net_->forward(c.in * x, t.to(x.scalar_type()), condition);
}

double ConsistencyModel::start_time() const {
  const double s0 = sigma_at(*schedule_, 0.0);
  return options_.sigma_max >= s0 ? 0.0 : schedule_->inverse_lambda(-2.0 * std::log(options_.sigma_max));
}

double ConsistencyModel::start_scale() const { return schedule_->b(start_time()) / schedule_->prior_std(); }

torch::Tensor ConsistencyModel::distance(const torch::Tensor& u) const {
  const torch::Tensor sq = u.reshape({u.size(0), -1}).pow(2).sum(1);
  if (options_.distance == "l2") return sq;
  const double c = options_.huber_c > 0 ? options_.huber_c : 0.00054 * std::sqrt(static_cast<double>(dim()));
  return torch::sqrt(sq + c * c) - c;
}

void ConsistencyModel::set_teacher(std::shared_ptr<const AffineModel> teacher, SamplerOptions step, double guidance) {
  SDEGEN_CHECK(teacher != nullptr, "consistency distillation: no teacher");
  SDEGEN_CHECK(!teacher->learns_schedule(), "consistency distillation needs a teacher on a fixed schedule; the '",
               teacher->kind(), "' teacher learns its schedule");
  SDEGEN_CHECK(teacher->options().schedule == options_.schedule &&
                   teacher->options().schedule_options.b_min == options_.schedule_options.b_min,
               "the student's schedule '", options_.schedule, "' differs from the teacher's '",
               teacher->options().schedule, "': a distilled model shares its teacher's path");
  SDEGEN_CHECK(teacher->shape() == shape(), "the teacher's examples differ in shape from the student's");
  const auto ode = ode_sampler_names();
  SDEGEN_CHECK(std::find(ode.begin(), ode.end(), step.solver) != ode.end(), "the teacher's step is an ODE solver (",
               join(ode), "), got '", step.solver, "'");
  SDEGEN_CHECK(step.diffusion.is_zero(), "the teacher's step follows its probability flow: no diffusion");
  SDEGEN_CHECK(guidance == 1.0 || teacher->num_classes() > 0, "guidance needs a class-conditional teacher");
  teacher_ = std::move(teacher);
  teacher_step_ = std::move(step);
  guidance_ = guidance;
  // A teacher whose prediction is singular at t = 1 is stepped to its own data end.
  const bool velocity = teacher_->options().prediction == Prediction::Velocity;
  top_ = velocity ? 1.0 : teacher_->time_range().second;
}

void ConsistencyModel::start_from(const AffineModel& teacher) {
  SDEGEN_CHECK(options_.inner == "prediction" && prediction_ == teacher.options().prediction,
               "starting from a teacher's weights needs inner = \"prediction\" with the teacher's prediction ('",
               prediction_name(teacher.options().prediction), "'), got inner '", options_.inner, "' with '",
               options_.prediction, "'");
  SDEGEN_CHECK(!teacher.options().precondition, "the teacher's network is wrapped by EDM's preconditioning, so its ",
               "weights alone are not its prediction; start from fresh weights");
  SDEGEN_CHECK(teacher.net().config() == net_->config(), "the teacher's network differs from the student's: ",
               teacher.net().config().dump(), " against ", net_->config().dump());
  torch::NoGradGuard no_grad;
  const auto from = teacher.net().named_parameters();
  for (auto& item : net_->named_parameters()) item.value().copy_(from[item.key()]);
}

const ConsistencyModel::Discretisation& ConsistencyModel::discretisation(int64_t n) const {
  if (n == cached_n_ && top_ == cached_top_) return cached_;
  Discretisation d;
  d.levels = consistency_levels(*schedule_, n, options_.sigma_max, options_.sigma_min, options_.rho, top_);
  // Pairs (i, i + 1): uniform, or in proportion to the log-normal mass of [log sigma_{i+1}, log sigma_i].
  std::vector<double> p(n - 1, 1.0);
  if (options_.level_sampling == "lognormal") {
    const double s = std::sqrt(2.0) * options_.lognormal_std;
    for (int64_t i = 0; i + 1 < n; ++i)
      p[i] = std::erf((std::log(d.levels.sigma[i]) - options_.lognormal_mean) / s) -
             std::erf((std::log(d.levels.sigma[i + 1]) - options_.lognormal_mean) / s);
  }
  d.pair_probabilities = torch::tensor(p, torch::TensorOptions(torch::kDouble));
  cached_ = std::move(d);
  cached_n_ = n;
  cached_top_ = top_;
  return cached_;
}

torch::Tensor ConsistencyModel::next_state(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& eps,
                                           const torch::Tensor& t_next, const std::vector<int64_t>& level,
                                           const ConsistencyLevels& L, const Condition& condition) const {
  const int64_t n = x.size(0);
  if (!teacher_) {
    const ScheduleCoefficients c = schedule_->coefficients(t_next).like(x);
    return c.a * y + c.b * eps;
  }
  // One Euler or Heun step (the default): every row at once, each from its own t_i to t_{i+1}, with
  // the teacher's velocity at per-row times. The same step as the solve per level below, in one
  // network call per stage instead of one per level present in the batch (a U-Net teacher was
  // 2 s a step at batch 64 with 17 levels).
  const std::string& solver = teacher_step_.solver;
  if (teacher_step_.steps == 1 && (solver == "euler" || solver == "heun")) {
    std::vector<double> from(n), to(n);
    for (int64_t i = 0; i < n; ++i) from[i] = L.t[level[i]], to[i] = L.t[level[i] + 1];
    const auto dbl = torch::TensorOptions(torch::kDouble);
    const torch::Tensor t0 = torch::tensor(from, dbl).to(x.device()), t1 = torch::tensor(to, dbl).to(x.device());
    const torch::Tensor h = per_row((t1 - t0).to(x.scalar_type()), x);
    const torch::Tensor k1 = teacher_->guided_velocity(x, t0, condition, guidance_);
    if (solver == "euler") return x + k1 * h;
    const torch::Tensor k2 = teacher_->guided_velocity(x + k1 * h, t1, condition, guidance_);
    return x + (k1 + k2) * (h / 2);
  }
  // Any other solver: one solve for the rows at each level.
  std::map<int64_t, std::vector<int64_t>> rows;
  for (int64_t i = 0; i < n; ++i) rows[level[i]].push_back(i);
  torch::Tensor out = torch::empty_like(x);
  for (const auto& [l, r] : rows) {
    const torch::Tensor idx = torch::tensor(r, torch::kLong).to(x.device());
    SamplerOptions o = teacher_step_;
    o.t0 = L.t[l];
    o.t1 = L.t[l + 1];
    const Condition c(condition.labels.defined() ? condition.labels.index_select(0, idx) : torch::Tensor());
    const auto field = teacher_->guided_field(c, guidance_);
    const Solution sol = sample(*field, x.index_select(0, idx), o);
    sol.check();
    out.index_copy_(0, idx, sol.x.to(x.scalar_type()));
  }
  return out;
}

torch::Tensor ConsistencyModel::loss(const torch::Tensor& y, const Condition& condition) {
  const std::vector<int64_t> want = shape();
  SDEGEN_CHECK(y.defined(), "the consistency model got no data");
  SDEGEN_CHECK(y.dim() == static_cast<int64_t>(want.size()) + 1 && y.sizes().slice(1) == c10::IntArrayRef(want),
               "the consistency model expects data of shape [batch] + ", c10::IntArrayRef(want), ", got ", y.sizes());
  SDEGEN_CHECK(options_.method == "training" || teacher_, "consistency distillation needs its teacher (set_teacher)");
  int64_t step = steps_.item<int64_t>();
  if (is_training()) steps_.fill_(step + 1);
  const Discretisation& disc = discretisation(consistency_level_count(options_, step));
  const ConsistencyLevels& L = disc.levels;
  const int64_t n = y.size(0);
  const torch::Tensor draw =
      shard_draw(n, [&](int64_t rows) { return torch::multinomial(disc.pair_probabilities, rows, /*replacement=*/true); });
  const int64_t* drawn = draw.data_ptr<int64_t>();
  const std::vector<int64_t> level(drawn, drawn + n);
  std::vector<double> t(n), t_next(n), weight(n);
  for (int64_t i = 0; i < n; ++i) {
    t[i] = L.t[level[i]];
    t_next[i] = L.t[level[i] + 1];
    weight[i] = 1.0 / (L.sigma[level[i]] - L.sigma[level[i] + 1]);
  }
  const auto opts = torch::TensorOptions(y.scalar_type()).device(y.device());
  const torch::Tensor tt = torch::tensor(t, torch::TensorOptions(torch::kDouble)).to(opts);
  const torch::Tensor tt_next = torch::tensor(t_next, torch::TensorOptions(torch::kDouble)).to(opts);
  const torch::Tensor eps = batch_randn_like(y);
  const ScheduleCoefficients c = schedule_->coefficients(tt).like(y);
  const torch::Tensor x = c.a * y + c.b * eps;
  torch::Tensor target;
  {
    // The teacher network: the student with stopped gradients, at the next level.
    torch::NoGradGuard no_grad;
    const torch::Tensor x_next = next_state(x, y, eps, tt_next, level, L, condition);
    target = map(x_next, tt_next, condition);
  }
  const torch::Tensor d = distance(map(x, tt, condition) - target);
  return (torch::tensor(weight, torch::TensorOptions(torch::kDouble)).to(opts) * d).mean();
}

ElboTerms ConsistencyModel::elbo(const torch::Tensor&, int64_t, const Condition&) {
  throw InvalidArgument(
      "a consistency model is a map from noise to data, not an SDE: it has no ELBO or likelihood (evaluate its "
      "samples, or the ELBO of the flow it was distilled from)");
}

std::shared_ptr<const GenerativeSde> ConsistencyModel::sde(const DiffusionSpec&) const {
  throw InvalidArgument("a consistency model has no SDE or probability flow; sample it with --solver consistency");
}

nlohmann::json to_json(const ConsistencyOptions& o) {
  return {{"kind", "consistency"},
          {"schedule", o.schedule},
          {"b_min", o.schedule_options.b_min},
          {"sigma_data", o.sigma_data},
          {"sigma_max", o.sigma_max},
          {"sigma_min", o.sigma_min},
          {"rho", o.rho},
          {"levels_start", o.levels_start},
          {"levels_end", o.levels_end},
          {"curriculum_steps", o.curriculum_steps},
          {"level_sampling", o.level_sampling},
          {"lognormal_mean", o.lognormal_mean},
          {"lognormal_std", o.lognormal_std},
          {"distance", o.distance},
          {"huber_c", o.huber_c},
          {"method", o.method},
          {"inner", o.inner},
          {"prediction", o.prediction},
          {"dtype", o.dtype},
          {"net", o.net}};
}

nlohmann::json ConsistencyModel::config() const { return to_json(options_); }

ConsistencyOptions consistency_options_from_json(const nlohmann::json& j) {
  SDEGEN_CHECK(j.is_object(), "a consistency model's configuration must be a JSON object, got ", j.dump());
  ConsistencyOptions o;
  const nlohmann::json reference = to_json(o);
  std::vector<std::string> keys;
  for (const auto& item : reference.items()) keys.push_back(item.key());
  for (const auto& item : j.items()) check_name("consistency configuration key", item.key(), keys);
  auto read = [&](const char* key, auto& value) {
    if (!j.contains(key)) return;
    const nlohmann::json& v = j.at(key);
    using T = std::decay_t<decltype(value)>;
    const bool ok = std::is_same_v<T, std::string> ? v.is_string()
                    : std::is_integral_v<T>        ? v.is_number_integer()
                                                   : v.is_number();
    SDEGEN_CHECK(ok, "consistency configuration: '", key, "' has the wrong type: ", v.dump());
    value = v.get<T>();
  };
  read("schedule", o.schedule);
  read("b_min", o.schedule_options.b_min);
  read("sigma_data", o.sigma_data);
  read("sigma_max", o.sigma_max);
  read("sigma_min", o.sigma_min);
  read("rho", o.rho);
  read("levels_start", o.levels_start);
  read("levels_end", o.levels_end);
  read("curriculum_steps", o.curriculum_steps);
  read("level_sampling", o.level_sampling);
  read("lognormal_mean", o.lognormal_mean);
  read("lognormal_std", o.lognormal_std);
  read("distance", o.distance);
  read("huber_c", o.huber_c);
  read("method", o.method);
  read("inner", o.inner);
  read("prediction", o.prediction);
  read("dtype", o.dtype);
  if (j.contains("net")) o.net = j.at("net");
  return o;
}

std::vector<double> consistency_sampling_times(const ConsistencyModel& model, int64_t steps) {
  std::vector<double> times;
  const double hi = 1.0, lo = 0.25;
  for (int64_t k = 1; k < steps; ++k) {
    const double f = steps == 2 ? 0.5 : static_cast<double>(k - 1) / static_cast<double>(steps - 2);
    const double sigma = hi * std::pow(lo / hi, f);
    const double t = model.schedule().inverse_lambda(-2.0 * std::log(sigma));
    // Never back towards the prior, nor past the data end (a schedule whose sigma range is narrower).
    times.push_back(std::clamp(t, times.empty() ? model.start_time() : times.back(), model.top()));
  }
  return times;
}

Solution consistency_sample(const ConsistencyModel& model, const torch::Tensor& x0, int64_t steps,
                            const Condition& condition) {
  SDEGEN_CHECK(steps >= 1, "consistency sampling needs at least 1 step, got ", steps);
  SDEGEN_CHECK(x0.defined() && x0.dim() >= 1, "consistency sampling needs prior draws [n, ...]");
  torch::NoGradGuard no_grad;
  const double t0 = model.start_time();
  const auto opts = x0.options();
  torch::Tensor y = model.map(x0 * model.start_scale(), torch::full({}, t0, opts), condition);
  for (const double t : consistency_sampling_times(model, steps)) {
    const double a = model.schedule().a(t), b = model.schedule().b(t);
    y = model.map(a * y + b * torch::randn_like(y), torch::full({}, t, opts), condition);
  }
  Solution sol;
  sol.x = y;
  sol.t = 1.0;
  sol.nfe = steps;
  sol.steps = steps;
  if (!torch::isfinite(y).all().item<bool>()) {
    sol.status = SolveStatus::NonFinite;
    sol.message = "consistency sampling gave values that are not finite; the model's weights may have diverged";
  }
  return sol;
}

}  // namespace sdegen
