#include "sdegen/objective/weighting.h"

#include "sdegen/core/check.h"

namespace sdegen {

torch::Tensor elbo_factor(Prediction native, const ScheduleCoefficients& c, const torch::Tensor& dlambda) {
  const torch::Tensor half = 0.5 * dlambda;
  switch (native) {
    case Prediction::Noise: return half;
    case Prediction::Data: return half * (c.a * c.a) / (c.b * c.b);
    case Prediction::Score: return half * c.b * c.b;
    case Prediction::Velocity: return 2.0 / (c.b * c.b * dlambda);
    case Prediction::V: {
      const torch::Tensor norm = c.a * c.a + c.b * c.b;
      return half * c.a * c.a / (norm * norm);
    }
  }
  throw InvalidArgument("elbo_factor: unknown prediction");
}

std::vector<std::string> weighting_names() { return {"elbo", "native", "edm"}; }

Weighting weighting_from_name(const std::string& name) {
  check_name("loss weighting", name, weighting_names());
  if (name == "elbo") return Weighting::Elbo;
  if (name == "native") return Weighting::Native;
  return Weighting::Edm;
}

std::string weighting_name(Weighting w) { return weighting_names()[static_cast<size_t>(w)]; }

torch::Tensor loss_weight(Weighting weighting, Prediction native, const ScheduleCoefficients& c,
                          const torch::Tensor& dlambda, const WeightingOptions& o) {
  switch (weighting) {
    case Weighting::Elbo: return torch::ones_like(dlambda);
    case Weighting::Native: return 1.0 / elbo_factor(native, c, dlambda);
    case Weighting::Edm: {
      SDEGEN_CHECK(o.sigma_data > 0, "EDM weighting needs sigma_data > 0, got ", o.sigma_data);
      const torch::Tensor sigma = c.b / c.a;
      const double sd2 = o.sigma_data * o.sigma_data;
      const torch::Tensor lambda_edm = (sigma * sigma + sd2) / (sigma * sigma * sd2);
      // EDM weighs the data prediction's error, whatever the network outputs natively.
      return lambda_edm / elbo_factor(Prediction::Data, c, dlambda);
    }
  }
  throw InvalidArgument("loss_weight: unknown weighting");
}

}  // namespace sdegen
