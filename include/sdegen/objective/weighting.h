#pragma once
// Every objective is the ELBO's integrand times a weight (shared/docs/math.md). For an affine
// schedule with the reverse diffusion sigma^2 = b^2 lambda', the ELBO's drift term is
//   int_0^1 1/2 lambda'(t) E|eps - eps_hat|^2 dt,
// and a network that predicts any of the five quantities regresses it with an error that is a
// fixed multiple of |eps - eps_hat|^2. So the integrand is c(t) |target - pred|^2 in the
// network's own ("native") space, with
//   noise    c = 1/2 lambda'
//   data     c = 1/2 lambda' a^2 / b^2           (= 1/2 SNR')
//   score    c = 1/2 lambda' b^2
//   velocity c = 2 / (b^2 lambda')
//   v        c = 1/2 lambda' a^2 / (a^2 + b^2)^2
// and a loss L_w = w(t) * integrand. The classic loss of each parameterisation, the plain
// squared error of its target, is the weight w = 1 / c: 2 / lambda' for noise (DDPM "simple",
// and denoising score matching with b^2 weighting), 1/2 b^2 lambda' for flow matching,
// 2 / (a^2 lambda') for v-prediction on a variance-preserving schedule.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "sdegen/param/prediction.h"
#include "sdegen/process/schedule.h"

namespace sdegen {

// c(t) above, for coefficients c and lambda' at the same times (any broadcastable shapes).
torch::Tensor elbo_factor(Prediction native, const ScheduleCoefficients& c, const torch::Tensor& dlambda);

// How a loss weighs the ELBO's integrand.
enum class Weighting {
  Elbo,    // w = 1: the loss is the ELBO's drift term (VDM)
  Native,  // w = 1 / c: the plain squared error of the network's own target
  Edm,     // EDM: lambda_edm(sigma) |y - y_hat|^2, lambda_edm = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2,
           // that is w = lambda_edm / c_data
};

std::vector<std::string> weighting_names();  // "elbo", "native", "edm"
Weighting weighting_from_name(const std::string& name);
std::string weighting_name(Weighting w);

struct WeightingOptions {
  double sigma_data = 0.5;  // EDM's data scale
};

// w(t) relative to the ELBO integrand, for a network with output `native`. For Edm the noise
// level is sigma = b / a.
torch::Tensor loss_weight(Weighting weighting, Prediction native, const ScheduleCoefficients& c,
                          const torch::Tensor& dlambda, const WeightingOptions& options = {});

}  // namespace sdegen
