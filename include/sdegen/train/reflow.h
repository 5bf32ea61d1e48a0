#pragma once
// Rectified flow's reflow (Liu et al. 2022; math.md "Few-step generation"): couple prior draws z
// with the teacher's probability-flow endpoints x = ODE(z) and train a flow on the linear path
// between them, x_t = t x + (1 - t) z with target velocity x - z. The teacher's flow never
// crosses itself, so these pairs do not cross either, and the flow learned from them is
// straighter than the teacher's: a few Euler steps then suffice. Repeating it on the new flow
// gives the k-rectified flow.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>

#include "sdegen/model/factory.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {

struct ReflowPairs {
  torch::Tensor z;       // [n, *shape] prior draws
  torch::Tensor x;       // [n, *shape] the teacher's endpoints from them
  torch::Tensor labels;  // [n] class labels the teacher was guided to; undefined: unconditional
  // [n, k] the condition vectors (standardised, as the model takes them) each pair was drawn at,
  // for a teacher trained with --condition-columns; undefined for others.
  torch::Tensor conditions;
  int64_t nfe = 0;  // teacher evaluations per batch, summed over the batches
};

// n prior draws through the teacher's probability flow with `solver` (an ODE solver), `batch`
// rows at a time. A class-conditional teacher draws its labels uniformly over the classes and is
// guided with weight `guidance` (math.md). A teacher with a condition vector is given one row of
// `conditions` ([n, k], standardised: the observations of its training rows, say) per pair, with
// the same guidance; it needs them, and no other teacher takes them. Refuses n < 1, a teacher
// without a probability flow (sde, consistency) and a stochastic solver, naming them; a failed
// solve throws NumericError. `progress`, when set, is told the pairs drawn so far after each batch.
ReflowPairs draw_reflow_pairs(const GenerativeModel& teacher, int64_t n, const SamplerOptions& solver,
                              double guidance = 1.0, int64_t batch = 1000,
                              const std::function<void(int64_t drawn)>& progress = {},
                              const torch::Tensor& conditions = {});

// The student: a flow (linear path, velocity prediction, independent draws since the pairs are
// given) with the teacher's network architecture and dtype, conditional on the teacher's classes
// or condition vector without dropout (its conditional field is the guided teacher's; guide it
// with weight 1).
nlohmann::json reflow_student_config(const GenerativeModel& teacher);

// Copies the teacher's weights into the student where names and shapes agree, as Liu et al.
// start each reflow from the previous flow; only for a teacher that is itself a velocity flow on
// the linear path (its weights then mean the same thing). Returns whether it copied.
bool warm_start_from_teacher(GenerativeModel& student, const GenerativeModel& teacher);

}  // namespace sdegen
