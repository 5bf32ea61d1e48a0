// AffineModel's fused training step: the loss of AffineModel::loss and its gradient, derived by
// hand and computed on raw buffers (net/mlp_kernel.h). With the native prediction F of the
// net at x_t = a y + b eps (EDM: pred = c_skip z + c_out F(c_in z), z = x_t / a), the loss is
//   L = k mean_i s_i |pred_i - T_i|^2 - reconstruction + prior,
// where T is the regression target of the prediction, s = w c the weight times the ELBO factor
// (objective/weighting.h), k = t_hi - t_lo for the ELBO weighting (1 otherwise), and the end
// terms depend on log delta only. So dL/dpred = 2 k s (pred - T) / n, dL/dF = c_out dL/dpred,
// and the net's reverse pass gives the rest.
#include <cmath>
#include <utility>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/objective/coupling.h"
#include "sdegen/process/loglinear.h"

namespace sdegen {
namespace {

enum Slot : size_t { kX, kScale, kCOut, kGrad, kTarget, kGradX, kErr2 };

// s = w c of objective/weighting.h at one time: the loss weight times the ELBO factor.
double weighted_factor(Weighting weighting, Prediction p, double a, double b, double dl, double sigma_data) {
  const double half = 0.5 * dl;
  double c = 0.0;
  switch (p) {
    case Prediction::Noise: c = half; break;
    case Prediction::Data: c = half * (a * a) / (b * b); break;
    case Prediction::Score: c = half * b * b; break;
    case Prediction::Velocity: c = 2.0 / (b * b * dl); break;
    case Prediction::V: {
      const double norm = a * a + b * b;
      c = half * a * a / (norm * norm);
      break;
    }
  }
  switch (weighting) {
    case Weighting::Elbo: return c;
    case Weighting::Native: return (1.0 / c) * c;
    case Weighting::Edm: {
      const double sigma = b / a, sd2 = sigma_data * sigma_data;
      const double lambda_edm = (sigma * sigma + sd2) / (sigma * sigma * sd2);
      return lambda_edm / (half * (a * a) / (b * b)) * c;
    }
  }
  throw InvalidArgument("weighted_factor: unknown weighting");
}

// EDM's preconditioning at noise level sigma = b / a (edm_denoiser in affine_model.cpp):
// pred = c_skip z + c_out F(c_in z) with z = x / a.
struct EdmScaling {
  double c_in, c_skip, c_out;
};
EdmScaling edm_scaling(double sigma, double sigma_data) {
  const double s2 = sigma * sigma + sigma_data * sigma_data, root = std::sqrt(s2);
  return {1.0 / root, sigma_data * sigma_data / s2, sigma * sigma_data / root};
}

// The regression target of a native prediction for one element.
double target(Prediction p, double y, double eps, double a, double b, double da, double db) {
  switch (p) {
    case Prediction::Data: return y;
    case Prediction::Noise: return eps;
    case Prediction::Score: return -eps / b;
    case Prediction::Velocity: return da * y + db * eps;
    case Prediction::V: return a * eps - b * y;
  }
  throw InvalidArgument("target: unknown prediction");
}

// The edm_denoiser's network input c_in x / a at time t, written to `input`; returns a and the
// scaling that maps the net's output F back (pred = c_skip x / a + c_out F).
std::pair<double, EdmScaling> edm_input(const AffineSchedule& schedule, RawCoefficients& c, double sigma_data,
                                        double t, const double* x, int64_t nd, double* input) {
  schedule.evaluate(&t, 1, c);
  const double a = c.a[0];
  const EdmScaling s = edm_scaling(c.b[0] / a, sigma_data);
  for (int64_t e = 0; e < nd; ++e) input[e] = s.c_in * (x[e] / a);
  return {a, s};
}

}  // namespace

RawPredictionFactory raw_prediction(Mlp net, SchedulePtr schedule, bool precondition, double sigma_data) {
  return [net, schedule, precondition, sigma_data]() mutable -> RawPrediction {
    if (!MlpKernel::supports(*net)) return {};
    const auto kernel = std::make_shared<const MlpKernel>(*net);
    const auto tape = std::make_shared<MlpTape>();
    const auto buffer = std::make_shared<std::vector<double>>();  // the times, then the net's input
    const auto coefficients = std::make_shared<RawCoefficients>();
    const int64_t d = kernel->in_dim();
    RawPrediction p;
    p.dim = d;
    p.fn = [kernel, tape, buffer, coefficients, schedule, precondition, sigma_data, d](const double* x, double t,
                                                                                        int64_t n, double* out) {
      const int64_t nd = n * d;
      if (static_cast<int64_t>(buffer->size()) < n + nd) buffer->resize(static_cast<size_t>(n + nd));
      double* times = buffer->data();
      std::fill(times, times + n, t);
      if (!precondition) {
        kernel->forward(x, times, n, {}, *tape);
        std::copy(tape->output(), tape->output() + nd, out);
        return;
      }
      // edm_denoiser: z = x / a, pred = c_skip z + c_out F(c_in z, t).
      const auto [a, s] = edm_input(*schedule, *coefficients, sigma_data, t, x, nd, times + n);
      kernel->forward(times + n, times, n, {}, *tape);
      const double* F = tape->output();
      for (int64_t e = 0; e < nd; ++e) out[e] = s.c_skip * (x[e] / a) + s.c_out * F[e];
    };
    const auto workspace = std::make_shared<Workspace>();  // forward_trace's tapes, one per thread
    p.with_trace = [kernel, workspace, buffer, coefficients, schedule, precondition, sigma_data, d](
                       const double* x, double t, int64_t n, double* out, double* trace) {
      const int64_t nd = n * d;
      if (static_cast<int64_t>(buffer->size()) < n + nd) buffer->resize(static_cast<size_t>(n + nd));
      double* times = buffer->data();
      std::fill(times, times + n, t);
      if (!precondition) {
        kernel->forward_trace(x, times, n, out, trace, *workspace);
        return;
      }
      // pred = c_skip x / a + c_out F(c_in x / a, t), so d pred/dx = (c_skip / a) I + (c_out c_in / a) J_F
      // and tr(d pred/dx) = c_skip d / a + (c_out c_in / a) tr J_F.
      const auto [a, s] = edm_input(*schedule, *coefficients, sigma_data, t, x, nd, times + n);
      kernel->forward_trace(times + n, times, n, out, trace, *workspace);
      for (int64_t e = 0; e < nd; ++e) out[e] = s.c_skip * (x[e] / a) + s.c_out * out[e];
      const double identity = s.c_skip * static_cast<double>(d) / a, chain = s.c_out * s.c_in / a;
      for (int64_t i = 0; i < n; ++i) trace[i] = identity + chain * trace[i];
    };
    return p;
  };
}

bool AffineModel::has_fused_step(const torch::Tensor& y) const {
  // Every parameter must be one derived here: the net's, log delta and, for vdm with m(t) = t,
  // the learned endpoints (noise or data prediction, the ELBO weighting, no preconditioning). A
  // net with a condition vector takes its rows' features as kernel inputs (a label does not).
  if (!mlp_ || y.dim() != 2) return false;
  size_t own = net_->parameters().size() + 1;
  if (learned_) {
    if (options_.schedule_knots != 1 || options_.precondition || options_.weighting != Weighting::Elbo ||
        (options_.prediction != Prediction::Noise && options_.prediction != Prediction::Data))
      return false;
    if (options_.learn_endpoints) own += 2;
  }
  return is_cpu_double(y) && parameters().size() == own &&
         MlpKernel::supports(*mlp_, nullptr, /*condition_inputs=*/true);
}

double AffineModel::loss_and_gradient(const torch::Tensor& y_in, const Condition& condition) {
  check_data(y_in);
  if (condition.labels.defined() || !has_fused_step(y_in)) return autograd_loss_and_gradient(*this, y_in, condition);
  const torch::Tensor y = y_in.contiguous();
  const int64_t n = y.size(0), d = dim();
  const bool endpoints = learned_ && options_.learn_endpoints;
  check_learned_endpoints();
  // The same draws in the same order as loss(): the times, the noise, then the condition dropout.
  const torch::Tensor t = sample_times(n, y.options()).contiguous();
  const torch::Tensor eps = prior_pairs(y, condition).contiguous();
  // A condition vector's rows enter the kernel as the module's features [c * p, p] (net/network.h).
  const int64_t observed = condition_dim();
  const torch::Tensor features = observed > 0 ? condition_features("the fused step", drop_labels(condition, n),
                                                                   observed, n, torch::kDouble, torch::kCPU)
                                                    .contiguous()
                                              : torch::Tensor();
  zero_gradients(parameters());

  RawCoefficients c;
  schedule_->evaluate(t.data_ptr<double>(), n, c);
  const double *Y = y.data_ptr<double>(), *E = eps.data_ptr<double>();
  double* x = workspace_.get(kX, n * d);
  double* scale = workspace_.get(kScale, n);
  double* c_out = workspace_.get(kCOut, n);
  double* T = workspace_.get(kTarget, n * d);
  const Prediction p = options_.prediction;
  const double sd = options_.sigma_data;
  for (int64_t i = 0; i < n; ++i) {
    const double a = c.a[i], b = c.b[i];
    scale[i] = weighted_factor(options_.weighting, p, a, b, c.dlambda[i], sd);
    for (int64_t j = 0; j < d; ++j) {
      const int64_t k = i * d + j;
      x[k] = a * Y[k] + b * E[k];
      T[k] = target(p, Y[k], E[k], a, b, c.da[i], c.db[i]);
    }
  }
  if (options_.precondition) {
    // The net sees c_in z and pred = c_skip z + c_out F: fold c_skip z into the target, so that
    // pred - T = c_out F - (T - c_skip z).
    for (int64_t i = 0; i < n; ++i) {
      const EdmScaling s = edm_scaling(c.b[i] / c.a[i], sd);
      c_out[i] = s.c_out;
      for (int64_t j = 0; j < d; ++j) {
        const int64_t k = i * d + j;
        const double z = x[k] / c.a[i];
        x[k] = s.c_in * z;
        T[k] -= s.c_skip * z;
      }
    }
  }

  MlpKernel net(*mlp_, /*condition_inputs=*/true);
  MlpTape& tape = workspace_.tape(0);
  net.forward(x, t.data_ptr<double>(), n, {}, tape, features.defined() ? features.data_ptr<double>() : nullptr);
  const double* F = tape.output();
  const auto [lo, hi] = time_range();
  const double k = options_.weighting == Weighting::Elbo ? hi - lo : 1.0;
  double* grad = workspace_.get(kGrad, n * d);
  double* err2s = workspace_.get(kErr2, n);
  double drift = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double co = options_.precondition ? c_out[i] : 1.0;
    double err2 = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const int64_t e = i * d + j;
      const double r = co * F[e] - T[e];
      err2 += r * r;
      grad[e] = 2.0 * k * scale[i] * r * co / static_cast<double>(n);
    }
    err2s[i] = err2;
    drift += scale[i] * err2;
  }
  drift *= k / static_cast<double>(n);
  double* grad_x = endpoints ? workspace_.get(kGradX, n * d) : nullptr;
  net.backward(tape, grad, grad_x);
  double g0 = 0.0, g1 = 0.0;  // dL/dl0, dL/dl1
  if (endpoints) {
    // lambda_i = l0 + D t_i with D = l1 - l0 = lambda'. The drift term k/n s_i |F_i - T_i|^2 with
    // s = D/2 (noise) or D/2 e^lambda (data), T = eps or y (no lambda in it), and the net's input
    // x_i = a y + b eps with da/dlambda = a b^2 / 2, db/dlambda = -b a^2 / 2. So
    //   dL/dD_i = k/n |r_i|^2 s_i / D,
    //   dL/dlambda_i = grad_x . dx/dlambda (+ k/n |r_i|^2 s_i for data, where ds/dlambda = s).
    const double D = learned_->lambda_1() - learned_->lambda_0(), kn = k / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      const double a = c.a[i], b = c.b[i], da = 0.5 * a * b * b, db = -0.5 * b * a * a;
      double dl = options_.prediction == Prediction::Data ? kn * err2s[i] * scale[i] : 0.0;
      for (int64_t j = 0; j < d; ++j) {
        const int64_t e = i * d + j;
        dl += grad_x[e] * (da * Y[e] + db * E[e]);
      }
      const double dD = kn * err2s[i] * scale[i] / D, ti = t.data_ptr<double>()[i];
      g0 += dl * (1.0 - ti) - dD;
      g1 += dl * ti + dD;
    }
  }

  // The end terms: reconstruction at t_hi (alpha = y exactly, beta / alpha = b / a) trains delta;
  // the prior KL at t_lo has no parameters.
  const double ends_t[2] = {lo, hi};
  RawCoefficients ends;
  schedule_->evaluate(ends_t, 2, ends);
  const double r = ends.b[1] / ends.a[1], a0 = ends.a[0], b0 = ends.b[0];
  const double ps = schedule_->prior_std(), delta = std::exp(*log_delta_.data_ptr<double>());
  const double dd = static_cast<double>(d);
  const double reconstruction = -0.5 * dd * std::log(2.0 * M_PI * delta * delta) - dd * r * r / (2.0 * delta * delta);
  const double s2 = (b0 / ps) * (b0 / ps);
  double prior = 0.0;
  for (int64_t e = 0; e < n * d; ++e) {
    const double m = a0 * Y[e] / ps;
    prior += 0.5 * (s2 + m * m - 1.0 - std::log(s2));
  }
  prior /= static_cast<double>(n);
  *log_delta_.grad().data_ptr<double>() = dd - dd * r * r / (delta * delta);
  if (endpoints) {
    // The ends move with the endpoints: lambda(hi) = l0 + D hi, lambda(lo) = l0 + D lo.
    // -reconstruction has r^2 = e^-lambda(hi): d/dlambda(hi) = -d r^2 / (2 delta^2).
    const double g_hi = -dd * r * r / (2.0 * delta * delta);
    // The prior with a0^2 = sigmoid(lambda(lo)), b0^2 = sigmoid(-lambda(lo)): d(a0^2) = a0^2 b0^2 = -d(b0^2),
    // so per element d/dlambda(lo) = (a0^2 b0^2 (y^2 - 1) / ps^2 + a0^2) / 2.
    const double A = a0 * a0, B = b0 * b0, p2 = ps * ps;
    double sum_y2 = 0.0;
    for (int64_t e = 0; e < n * d; ++e) sum_y2 += Y[e] * Y[e];
    const double g_lo = 0.5 * (A * B * (sum_y2 / static_cast<double>(n) - dd) / p2 + dd * A);
    g0 += g_hi * (1.0 - hi) + g_lo * (1.0 - lo);
    g1 += g_hi * hi + g_lo * lo;
    *learned_->parameters().lambda_0.grad().data_ptr<double>() = g0;
    *learned_->parameters().lambda_1.grad().data_ptr<double>() = g1;
  }
  return drift - reconstruction + prior;
}

}  // namespace sdegen
