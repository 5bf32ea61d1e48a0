#include "sdegen/param/prediction.h"

#include "sdegen/core/check.h"

namespace sdegen {

std::vector<std::string> prediction_names() { return {"data", "noise", "score", "velocity", "v"}; }

Prediction prediction_from_name(const std::string& name) {
  check_name("prediction", name, prediction_names());
  if (name == "data") return Prediction::Data;
  if (name == "noise") return Prediction::Noise;
  if (name == "score") return Prediction::Score;
  if (name == "velocity") return Prediction::Velocity;
  return Prediction::V;
}

std::string prediction_name(Prediction p) {
  return prediction_names()[static_cast<size_t>(p)];
}

DataNoise to_data_noise(const torch::Tensor& value, Prediction from, const torch::Tensor& x,
                        const ScheduleCoefficients& c) {
  switch (from) {
    case Prediction::Data:
      return {value, (x - c.a * value) / c.b};
    case Prediction::Noise:
      return {(x - c.b * value) / c.a, value};
    case Prediction::Score: {
      const torch::Tensor eps = -c.b * value;
      return {(x - c.b * eps) / c.a, eps};
    }
    case Prediction::Velocity: {
      // Solve [a b; a' b'] [y; eps] = [x; v]. Where b' is infinite (b = 0 at the data end of vp
      // and vp-cosine) both quotients are inf / inf; for a finite v their limit is y = x / a,
      // eps = 0.
      const torch::Tensor det = c.a * c.db - c.b * c.da;
      torch::Tensor y = (c.db * x - c.b * value) / det, eps = (c.a * value - c.da * x) / det;
      const torch::Tensor singular = torch::isinf(c.db);
      if (singular.any().item<bool>()) {
        y = torch::where(singular, x / c.a, y);
        eps = torch::where(singular, torch::zeros_like(eps), eps);
      }
      return {y, eps};
    }
    case Prediction::V: {
      const torch::Tensor norm = c.a * c.a + c.b * c.b;
      return {(c.a * x - c.b * value) / norm, (c.b * x + c.a * value) / norm};
    }
  }
  throw InvalidArgument("to_data_noise: unknown prediction");
}

torch::Tensor from_data_noise(const DataNoise& dn, Prediction to, const ScheduleCoefficients& c) {
  switch (to) {
    case Prediction::Data: return dn.data;
    case Prediction::Noise: return dn.noise;
    case Prediction::Score: return -dn.noise / c.b;
    case Prediction::Velocity: return c.da * dn.data + c.db * dn.noise;
    case Prediction::V: return c.a * dn.noise - c.b * dn.data;
  }
  throw InvalidArgument("from_data_noise: unknown prediction");
}

torch::Tensor convert(const torch::Tensor& value, Prediction from, Prediction to,
                      const torch::Tensor& x, const ScheduleCoefficients& c) {
  if (from == to) return value;
  return from_data_noise(to_data_noise(value, from, x, c), to, c);
}

double velocity_of(Prediction from, double value, double x, double a, double b, double da, double db) {
  double y = 0.0, eps = 0.0;
  switch (from) {
    case Prediction::Velocity: return value;
    case Prediction::Data: y = value, eps = (x - a * value) / b; break;
    case Prediction::Noise: y = (x - b * value) / a, eps = value; break;
    case Prediction::Score: eps = -b * value, y = (x - b * eps) / a; break;
    case Prediction::V: {
      const double norm = a * a + b * b;
      y = (a * x - b * value) / norm, eps = (b * x + a * value) / norm;
      break;
    }
  }
  return da * y + db * eps;
}

// v = a' y_hat + b' eps_hat with (y_hat, eps_hat) from velocity_of's relations, collected by x and
// by the prediction p:
//   data     y = p, eps = (x - a p) / b        v = (a' - b' a / b) p + (b' / b) x
//   noise    y = (x - b p) / a, eps = p        v = (b' - a' b / a) p + (a' / a) x
//   score    eps = -b p, y = (x + b^2 p) / a   v = (a' b^2 / a - b' b) p + (a' / a) x
//   v        y = (a x - b p) / n, eps = (b x + a p) / n with n = a^2 + b^2
//                                              v = (b' a - a' b) / n p + (a' a + b' b) / n x
VelocityTerms velocity_terms(Prediction from, double a, double b, double da, double db) {
  switch (from) {
    case Prediction::Velocity: return {1.0, 0.0};
    case Prediction::Data: return {da - db * a / b, db / b};
    case Prediction::Noise: return {db - da * b / a, da / a};
    case Prediction::Score: return {da * b * b / a - db * b, da / a};
    case Prediction::V: {
      const double norm = a * a + b * b;
      return {(db * a - da * b) / norm, (da * a + db * b) / norm};
    }
  }
  throw InvalidArgument("velocity_terms: unknown prediction");
}

}  // namespace sdegen
