#include "sdegen/train/reflow.h"

#include <algorithm>

#include "sdegen/core/check.h"
#include "sdegen/model/affine_model.h"

namespace sdegen {

ReflowPairs draw_reflow_pairs(const GenerativeModel& teacher, int64_t n, const SamplerOptions& solver, double guidance,
                              int64_t batch, const std::function<void(int64_t drawn)>& progress,
                              const torch::Tensor& conditions) {
  SDEGEN_CHECK(n >= 1, "reflow needs at least one pair, got ", n);
  SDEGEN_CHECK(batch >= 1, "reflow: the batch must be >= 1, got ", batch);
  SDEGEN_CHECK(teacher.has_probability_flow(), "reflow couples prior draws with the ends of the teacher's ",
               "probability-flow ODE; the '", teacher.kind(), "' model has none");
  const auto ode = ode_sampler_names();
  SDEGEN_CHECK(std::find(ode.begin(), ode.end(), solver.solver) != ode.end(), "reflow's pairs come from an ODE "
               "solver (", join(ode), "); '", solver.solver, "' draws noise, which would not couple z with x");
  const int64_t classes = teacher.num_classes(), k = teacher.condition_dim();
  SDEGEN_CHECK(classes > 0 || k > 0 || guidance == 1.0, "guidance needs a conditional teacher (class-conditional, or trained with --condition-columns)");
  SDEGEN_CHECK(k == 0 || (conditions.defined() && conditions.dim() == 2 && conditions.size(0) == n &&
                          conditions.size(1) == k),
               "reflow: the teacher is conditioned on ", k, " values and needs [n, ", k, "] = [", n, ", ", k,
               "] condition rows, got ", conditions.defined() ? conditions.sizes() : c10::IntArrayRef{});
  SDEGEN_CHECK(k > 0 || !conditions.defined(), "reflow: the teacher takes no condition vector");
  torch::NoGradGuard no_grad;
  ReflowPairs p;
  p.z = sample_model_prior(teacher, n);
  if (classes > 0) p.labels = torch::randint(classes, {n}, torch::TensorOptions(torch::kLong));
  Condition given;  // checked once here; each batch's rows keep the mark
  if (k > 0) {
    given.vector = conditions;
    given = checked_finite("reflow's condition rows", given);
    p.conditions = conditions;
  }
  std::vector<torch::Tensor> xs;
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t m = std::min(batch, n - i);
    Guidance g{p.labels.defined() ? Condition(p.labels.narrow(0, i, m)) : Condition(), guidance};
    if (k > 0) {
      g.condition.vector = given.vector.narrow(0, i, m);
      g.condition.vector_finite = true;
    }
    const Solution sol = generate(teacher, p.z.narrow(0, i, m), solver, g);
    sol.check();
    p.nfe += sol.nfe;
    xs.push_back(sol.x);
    if (progress) progress(i + m);
  }
  p.x = torch::cat(xs);
  return p;
}

nlohmann::json reflow_student_config(const GenerativeModel& teacher) {
  const nlohmann::json t = teacher.config();
  AffineModelOptions o = affine_model_defaults("flow", teacher.dim());
  o.net = t.at("net");
  if (t.contains("dtype")) o.dtype = t.at("dtype").get<std::string>();
  o.p_uncond = 0.0;
  return to_json(o);
}

bool warm_start_from_teacher(GenerativeModel& student, const GenerativeModel& teacher) {
  const auto* flow = dynamic_cast<const AffineModel*>(&teacher);
  if (!flow || flow->kind() != "flow" || flow->options().schedule != "linear" ||
      flow->options().prediction != Prediction::Velocity || flow->options().precondition)
    return false;
  torch::NoGradGuard no_grad;
  const auto from = teacher.named_parameters();
  bool copied = false;
  for (auto& item : student.named_parameters()) {
    const torch::Tensor* src = from.find(item.key());
    if (!src || src->sizes() != item.value().sizes()) continue;
    item.value().copy_(*src);
    copied = true;
  }
  return copied;
}

}  // namespace sdegen
