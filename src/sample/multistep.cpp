// Diffusion multistep solvers on the data prediction y_hat(x, t). With l = lambda / 2 = log(a / b)
// the probability-flow ODE is d(x / b) = e^l y_hat dl, so over a step of size h = l_{i+1} - l_i
//   x_{i+1} = (b_{i+1} / b_i) x_i + a_{i+1} int_0^h e^{-(h - u)} y_hat(l_i + u) du
// exactly. Holding y_hat fixed gives DDIM. The exponential Adams methods replace y_hat by the
// polynomial through the last k predictions (in l) and integrate it exactly: k = 3 is
// DPM-Solver++(3M) (k-diffusion's form); the UniPC-style corrector adds the prediction at the
// new point, evaluated at the predicted state, and re-solves the step one order higher; that
// evaluation is the next step's history, so the corrector costs no extra evaluation.
// DPM-Solver++(2M) keeps its paper's second-order form (phi_2 ~ phi_1 / 2).
// e^{-h} = (a_i b_{i+1}) / (b_i a_{i+1}) is formed directly, so an end where a = 0 (l = -inf) or
// b = 0 (l = +inf) needs no special case; an infinite step, or a history point at l = -inf,
// drops the order to what the finite points support.
#include <cmath>
#include <deque>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/sample/sampler.h"
#include "sdegen/solver/multistep.h"

namespace sdegen {
namespace {

struct GridCoefficients {
  std::vector<double> a, b, l;
};

GridCoefficients grid_coefficients(const AffineSchedule& s, const TimeGrid& grid) {
  GridCoefficients c;
  for (double t : grid) {
    c.a.push_back(s.a(t));
    c.b.push_back(s.b(t));
    c.l.push_back(std::log(c.a.back()) - std::log(c.b.back()));
  }
  return c;
}

struct Node {
  double l;
  torch::Tensor y;
};

enum class Form { Ddim, DpmPP2m, Exponential };

}  // namespace

namespace detail {

std::vector<double> exponential_moments(double h, int n) {
  SDEGEN_CHECK(h > 0 && std::isfinite(h), "exponential_moments needs a finite step h > 0, got ", h);
  std::vector<double> J(static_cast<size_t>(n));
  if (h < 1.0) {
    // J_j = j! h sum_k (-h)^k / (k + j + 1)!: the recursion below loses ~j digits to
    // cancellation as h -> 0, the series none.
    for (int j = 0; j < n; ++j) {
      double term = h / (j + 1), sum = term;
      for (int k = 1; k < 60 && std::abs(term) > 1e-18 * std::abs(sum); ++k) {
        term *= -h / (k + j + 1);
        sum += term;
      }
      J[j] = sum;
    }
  } else {
    J[0] = -std::expm1(-h);
    for (int j = 1; j < n; ++j) J[j] = 1.0 - (j / h) * J[j - 1];
  }
  return J;
}

std::vector<double> exponential_weights(const std::vector<double>& nodes, double h) {
  std::vector<double> v;
  for (double u : nodes) v.push_back(u / h);
  return interpolatory_weights(v, exponential_moments(h, static_cast<int>(nodes.size())));
}

}  // namespace detail

namespace {

// One exponential step from node list (the first is the current point l_i, then the new point
// for a corrector or earlier points): x_{i+1} = ratio x + a_{i+1} sum_m w_m y_m.
torch::Tensor exponential_step(const torch::Tensor& x, double ratio, double a_next, double h,
                               double l_i, const std::vector<const Node*>& nodes) {
  std::vector<double> u;
  for (const Node* n : nodes) u.push_back(n->l - l_i);
  const std::vector<double> w = detail::exponential_weights(u, h);
  torch::Tensor sum = w[0] * nodes[0]->y;
  for (size_t m = 1; m < nodes.size(); ++m) sum = sum + w[m] * nodes[m]->y;
  return ratio * x + a_next * sum;
}

// The grid walk, finiteness check and observation are the fixed-grid solvers' own
// (detail::march); the step keeps the recent data predictions at finite l.
Solution multistep(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid, Form form,
                   const MultistepOptions& o, const Observer& observer) {
  detail::check_grid(grid);
  SDEGEN_CHECK(grid[1] > grid[0], "diffusion multistep solvers need an increasing grid, got ", grid[0],
               " then ", grid[1]);
  SDEGEN_CHECK(o.order >= 1 && o.order <= 4, "multistep order must be 1 to 4, got ", o.order);
  const GridCoefficients c = grid_coefficients(model.schedule(), grid);
  const size_t last = grid.size() - 2;
  size_t i = 0;
  std::deque<Node> history;  // most recent first; only points with finite l
  torch::Tensor pending;     // the corrector's evaluation at the current point, if any
  torch::Tensor y_prev;      // dpm++2m
  double h_prev = 0.0;
  const detail::GridStep step = [&](double t, double, const torch::Tensor& x, int64_t& nfe) {
    SDEGEN_CHECK(c.b[i] > 0, "diffusion multistep solvers cannot step from t = ", t, " where b(t) = 0");
    torch::Tensor y = pending;
    if (!y.defined()) {
      y = model.predict(x, t, Prediction::Data);
      ++nfe;
    }
    pending = torch::Tensor();
    const double h = c.l[i + 1] - c.l[i];
    const double ratio = c.b[i + 1] / c.b[i];
    const double exp_neg_h = (c.a[i] * c.b[i + 1]) / (c.b[i] * c.a[i + 1]);
    torch::Tensor next;
    if (form != Form::Exponential) {
      torch::Tensor d = y;
      if (form == Form::DpmPP2m && y_prev.defined() && std::isfinite(h) && std::isfinite(h_prev)) {
        const double r = h_prev / h;
        d = (1.0 + 0.5 / r) * y - (0.5 / r) * y_prev;
      }
      next = ratio * x + c.a[i + 1] * (1.0 - exp_neg_h) * d;
      y_prev = y;
      h_prev = h;
    } else {
      const bool finite = std::isfinite(c.l[i]) && std::isfinite(h);
      if (finite) {
        history.push_front({c.l[i], y});
        if (history.size() > static_cast<size_t>(o.order)) history.pop_back();
      } else {
        history.clear();
      }
      if (!finite) {
        next = ratio * x + c.a[i + 1] * (1.0 - exp_neg_h) * y;
      } else {
        std::vector<const Node*> nodes;
        for (const Node& n : history) nodes.push_back(&n);
        next = exponential_step(x, ratio, c.a[i + 1], h, c.l[i], nodes);
        if (o.corrector && i < last && c.b[i + 1] > 0) {
          const Node fresh{c.l[i + 1], model.predict(next, grid[i + 1], Prediction::Data)};
          ++nfe;
          nodes.insert(nodes.begin() + 1, &fresh);
          next = exponential_step(x, ratio, c.a[i + 1], h, c.l[i], nodes);
          pending = fresh.y;
        }
      }
    }
    ++i;
    return next;
  };
  return detail::march(grid, x0, step, observer);
}

}  // namespace

Solution solve_ddim(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                    const Observer& observer) {
  return multistep(model, x0, grid, Form::Ddim, {}, observer);
}

Solution solve_dpmpp_2m(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                        const Observer& observer) {
  return multistep(model, x0, grid, Form::DpmPP2m, {}, observer);
}

Solution solve_exponential_multistep(const MarginalField& model, const torch::Tensor& x0,
                                     const TimeGrid& grid, const MultistepOptions& options,
                                     const Observer& observer) {
  return multistep(model, x0, grid, Form::Exponential, options, observer);
}

}  // namespace sdegen
