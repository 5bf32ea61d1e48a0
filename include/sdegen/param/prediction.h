#pragma once
// A network's output for an affine schedule can be written as any of five predictions; given
// (x, t, a, b, a', b') they are interchangeable (shared/docs/math.md, "The specialisations"):
//   data     y_hat      x = a y_hat + b eps_hat
//   noise    eps_hat    eps_hat = (x - a y_hat) / b
//   score    s_hat      s_hat = -eps_hat / b
//   velocity v_hat      v_hat = a' y_hat + b' eps_hat   (the probability-flow ODE's field)
//   v        vpred      vpred = a eps_hat - b y_hat
#include <torch/torch.h>

#include <string>
#include <vector>

#include "sdegen/process/schedule.h"

namespace sdegen {

enum class Prediction { Data, Noise, Score, Velocity, V };

std::vector<std::string> prediction_names();  // "data", "noise", "score", "velocity", "v"
Prediction prediction_from_name(const std::string& name);
std::string prediction_name(Prediction p);

// The (y_hat, eps_hat) pair every prediction maps to.
struct DataNoise {
  torch::Tensor data, noise;
};

// c must broadcast against x (use ScheduleCoefficients::like). Conversions divide by a, b or
// a b' - b a' where the relation needs it: at an end point where that is zero the result is
// not finite, exactly as the relation says. From a velocity where b' is infinite (vp's t = 1)
// the result is the finite limit y_hat = x / a, eps_hat = 0.
DataNoise to_data_noise(const torch::Tensor& value, Prediction from, const torch::Tensor& x,
                        const ScheduleCoefficients& c);
torch::Tensor from_data_noise(const DataNoise& dn, Prediction to, const ScheduleCoefficients& c);
torch::Tensor convert(const torch::Tensor& value, Prediction from, Prediction to,
                      const torch::Tensor& x, const ScheduleCoefficients& c);

// convert(value, from, Velocity, x, c) for one element, on doubles (the raw sampling path).
double velocity_of(Prediction from, double value, double x, double a, double b, double da, double db);

// The velocity is affine in the prediction and x at a fixed time, with no constant term:
// velocity_of(from, value, x, ...) = terms.value * value + terms.x * x. So its Jacobian in x is
// terms.value J + terms.x I, where J is the prediction's own Jacobian, and its divergence is
// terms.value tr J + terms.x d: the exact likelihood of a network that predicts `from`.
struct VelocityTerms {
  double value = 1.0, x = 0.0;
};
VelocityTerms velocity_terms(Prediction from, double a, double b, double da, double db);

}  // namespace sdegen
