#pragma once
// Consistency models (Song et al. 2023; improved training: Song and Dhariwal 2023): a map F(x, t)
// from any point of a probability flow to its data end, so that one evaluation generates.
// In sdegen's direction (math.md: t = 0 prior, t = 1 data) on an affine path
// x_t = a(t) y + b(t) eps, with sigma(t) = b / a and s_d = sigma_data, EDM's boundary
// parameterisation written in a and b (finite where a = 0, the prior end of linear):
//
//   F(x, t) = c_skip x + c_out net(c_in x, t),    m = b - sigma_min a,
//   c_skip = s_d^2 a / (m^2 + s_d^2 a^2),  c_out = s_d m / sqrt(b^2 + s_d^2 a^2),
//   c_in = 1 / sqrt(b^2 + s_d^2 a^2),      sigma_min = sigma(1),
//
// which is c_skip(sigma) x/a + c_out(sigma) net(...) of EDM with sigma - sigma_min in place of
// sigma. At t = 1, m = 0 exactly: c_out = 0 and c_skip = 1 / a(1), so F(x, 1) = x / a(1), which is
// x for every named schedule but loglinear (a(1) = 1). The coefficients are formed before they
// multiply x, so the boundary holds to the last bit.
//
// Training pairs adjacent levels t_i < t_{i+1} of a discretisation (sigma_i > sigma_{i+1}) and
// minimises lambda_i d(F(x_{t_i}, t_i), sg F(x_{t_{i+1}}, t_{i+1})) with the teacher network
// sg F the student with stopped gradients (the improved recipe's choice: no EMA teacher):
//   training      x_{t_{i+1}} = a y + b eps with the same eps as x_{t_i} (no teacher);
//   distillation  x_{t_{i+1}} = one step of a teacher's probability flow from x_{t_i}, by any of
//                 the ODE solvers of sample/sampler.h (the teacher is an affine model whose
//                 schedule the student shares).
// The improved recipe: levels sigma_i on EDM's rho grid from sigma_max to sigma_min, then the top, the
// pseudo-Huber distance d = sqrt(|u|^2 + c^2) - c with c = 0.00054 sqrt(dim), the weight
// lambda_i = 1 / (sigma_i - sigma_{i+1}), levels drawn with probability proportional to the
// log-normal mass of [log sigma_{i+1}, log sigma_i], and a curriculum that doubles the number of
// levels from levels_start to levels_end over curriculum_steps training steps.
// The network may instead predict as a teacher's does (inner = "prediction"): then
//   F(x, t) = c_skip x + (1 - c_skip a) D(x, t),   1 - c_skip a = m^2 / (m^2 + s_d^2 a^2),
// with D the data prediction converted from the network's `prediction` output at (x, t), so that
// a student given its teacher's weights starts as the teacher's denoiser away from the data end
// (Song et al. start distillation from the teacher's weights). The boundary holds exactly too.
// A consistency model is a map, not an SDE: it has no ELBO and no probability flow (both are
// refused with the reason); it samples with consistency_sample.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sdegen/model/generative_model.h"
#include "sdegen/net/mlp.h"
#include "sdegen/param/prediction.h"
#include "sdegen/process/schedule.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {

class AffineModel;

struct ConsistencyOptions {
  std::string schedule = "linear";  // the path x_t = a y + b eps (a distilled model: its teacher's)
  ScheduleOptions schedule_options;
  double sigma_data = 1.0;   // the data's scale (1: sdegen standardises data)
  double sigma_max = 80.0;   // the noisiest level, at most the schedule's sigma(0)
  double sigma_min = 0.002;  // the rho grid's last level before the top (EDM's)
  double rho = 7.0;          // EDM's grid exponent
  // Levels N(k) = min(levels_start 2^floor(k / K'), levels_end) + 1 at training step k, with
  // K' = floor(K / (log2(levels_end / levels_start) + 1)) and K = curriculum_steps (0: always
  // levels_start + 1 levels, the fixed discretisation distillation uses).
  int64_t levels_start = 10;
  int64_t levels_end = 1280;
  int64_t curriculum_steps = 0;
  std::string level_sampling = "lognormal";  // lognormal (improved recipe) | uniform (original)
  double lognormal_mean = -1.1;
  double lognormal_std = 2.0;
  std::string distance = "pseudo-huber";  // pseudo-huber | l2
  double huber_c = 0.0;                   // 0: 0.00054 sqrt(dim)
  std::string method = "training";        // training | distillation (recorded; see set_teacher)
  std::string inner = "edm";              // edm | prediction (the network's role, above)
  std::string prediction = "velocity";    // inner = prediction: what the network outputs
  nlohmann::json net = to_json(MlpOptions(1));
  std::string dtype = "float64";
};

std::vector<std::string> consistency_method_names();  // training, distillation
// The solver name sdegen sample and eval take for a consistency model.
inline const char* consistency_solver_name() { return "consistency"; }

// The discretisation at N levels: times t_0 < ... < t_{N-1} and their sigmas, decreasing. The
// first N - 1 lie on EDM's rho grid from min(sigma_max, sigma(0)) (t_0 = 0 where that is sigma(0))
// to sigma_min, and the last is the top itself (sigma(top): 0 for linear at t = 1), where F is
// the identity; when sigma(top) >= sigma_min all N lie on the grid down to it.
struct ConsistencyLevels {
  std::vector<double> t, sigma;
};
ConsistencyLevels consistency_levels(const AffineSchedule& schedule, int64_t n, double sigma_max, double sigma_min,
                                     double rho, double top = 1.0);
// N(k) of the curriculum at step k (options above).
int64_t consistency_level_count(const ConsistencyOptions& options, int64_t step);

class ConsistencyModel final : public GenerativeModel {
 public:
  explicit ConsistencyModel(ConsistencyOptions options);

  std::string kind() const override { return "consistency"; }
  int64_t dim() const override;
  std::vector<int64_t> shape() const override { return net_->shape(); }
  int64_t num_classes() const override { return net_->num_classes(); }

  // The consistency loss on a batch (training, or distillation once a teacher is set). In train
  // mode each call is one step of the curriculum (the step count is a buffer, so checkpoints
  // carry it); in eval mode (validation, probes) it does not advance.
  torch::Tensor loss(const torch::Tensor& y, const Condition& condition = {}) override;
  // Refused: a consistency model is a map, not an SDE, and has no ELBO.
  ElboTerms elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition = {}) override;
  // Refused: it has no SDE to sample by (consistency_sample samples it).
  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const override;
  bool has_probability_flow() const override { return false; }
  bool has_elbo() const override { return false; }
  nlohmann::json config() const override;

  // F(x, t) (t: [B] or 0-dim).
  torch::Tensor map(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition = {}) const;
  // c_skip, c_out and c_in at times t, shaped to broadcast against x.
  // rest = 1 - c_skip a = m^2 / (m^2 + s_d^2 a^2), the data prediction's weight when inner =
  // "prediction" (exactly 0 at the data end).
  struct Coefficients {
    torch::Tensor skip, out, in, rest;
  };
  Coefficients coefficients(const torch::Tensor& t, const torch::Tensor& x) const;

  // Distillation: the teacher whose probability flow gives x_{t_{i+1}} from x_{t_i}, one `step`
  // solve (an ODE solver of sample/sampler.h; its steps between adjacent levels), with guidance
  // weight w at the batch's labels. Refuses a teacher on another schedule or without a
  // prediction field. Not saved: a resumed distillation sets it again.
  void set_teacher(std::shared_ptr<const AffineModel> teacher, SamplerOptions step, double guidance = 1.0);
  bool has_teacher() const { return teacher_ != nullptr; }
  // Copies the teacher's network weights into this model's network (inner = "prediction" with
  // the teacher's prediction and architecture), so that it starts as the teacher's denoiser.
  // Refuses a teacher wrapped by EDM's preconditioning, whose weights alone are not its prediction.
  void start_from(const AffineModel& teacher);

  const AffineSchedule& schedule() const { return *schedule_; }
  const ConsistencyOptions& options() const { return options_; }
  // The discretisation's top level: 1, or a distilling teacher's data end (its prediction may be
  // singular at t = 1).
  double top() const { return top_; }
  // Curriculum steps taken so far.
  int64_t steps_taken() const;
  // Where one-step sampling starts: the time of sigma = min(sigma_max, sigma(0)), and the state
  // scale there relative to a prior draw (b(t_start) / prior_std).
  double start_time() const;
  double start_scale() const;
  double prior_std() const { return schedule_->prior_std(); }

 private:
  // The levels at N and the probability of each adjacent pair (i, i + 1), computed once per N
  // and top: the curriculum keeps N for thousands of steps, and the levels cost one inverse of
  // lambda each.
  struct Discretisation {
    ConsistencyLevels levels;
    torch::Tensor pair_probabilities;  // [N - 1], double
  };
  const Discretisation& discretisation(int64_t n) const;
  // The coefficients from the schedule's a and b, shaped like them.
  Coefficients coefficients(const ScheduleCoefficients& c) const;
  // x_{t_{i+1}} at times t_next [B] for the batch: the same noise (training) or the teacher's step
  // (distillation).
  torch::Tensor next_state(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& eps,
                           const torch::Tensor& t_next, const std::vector<int64_t>& level,
                           const ConsistencyLevels& levels, const Condition& condition) const;
  torch::Tensor distance(const torch::Tensor& u) const;

  ConsistencyOptions options_;
  SchedulePtr schedule_;
  NetworkPtr net_;
  double sigma_min_ = 0.0;
  Prediction prediction_ = Prediction::Velocity;  // options_.prediction
  double top_ = 1.0;
  torch::Tensor steps_;  // buffer: curriculum steps taken
  std::shared_ptr<const AffineModel> teacher_;
  SamplerOptions teacher_step_;
  double guidance_ = 1.0;
  mutable Discretisation cached_;  // for cached_n_ levels below cached_top_ (0: none yet)
  mutable int64_t cached_n_ = 0;
  mutable double cached_top_ = 0.0;
};

ConsistencyOptions consistency_options_from_json(const nlohmann::json& config);
nlohmann::json to_json(const ConsistencyOptions& options);

// The re-noising times of K-step sampling: K - 1 levels geometric in sigma = b / a from 1 down to
// 0.25 (K = 2: sigma = 0.5), in the data's standardised units. Measured with the distilled and
// the trained model on moons, 8gaussians and checkerboard (README, "Few-step generation"): a
// second step at sigma 0.5 to 0.7 gave the lowest summed distance of the six; each model's own
// best lies between 0.05 and 1.
std::vector<double> consistency_sampling_times(const ConsistencyModel& model, int64_t steps);

// Multistep consistency sampling from prior draws x0 [n, *shape]: y = F(x0 start_scale, t_start),
// then at each re-noising time t_k, x = a(t_k) y + b(t_k) z and y = F(x, t_k). steps
// evaluations; the noise comes from torch's default generator.
Solution consistency_sample(const ConsistencyModel& model, const torch::Tensor& x0, int64_t steps,
                            const Condition& condition = {});

}  // namespace sdegen
