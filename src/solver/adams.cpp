// Variable-step Adams methods: over a step [t_n, t_n + h] the field is replaced by the
// polynomial through its recent values and integrated exactly. In v = (t - t_n) / h the nodes
// are 0, -r_1, -r_2, ... (earlier points) and 1 (the corrector's point), so one routine,
// interpolatory_weights with moments 1 / (j + 1), gives every order and spacing.
#include <deque>

#include "sdegen/core/check.h"
#include "sdegen/solver/multistep.h"

namespace sdegen {

namespace detail {

std::vector<double> interpolatory_weights(const std::vector<double>& nodes,
                                          const std::vector<double>& moments) {
  const size_t k = nodes.size();
  SDEGEN_CHECK(k >= 1 && moments.size() >= k, "interpolatory_weights needs one moment per node, got ",
               k, " nodes and ", moments.size(), " moments");
  std::vector<double> w(k, 0.0);
  for (size_t m = 0; m < k; ++m) {
    std::vector<double> c{1.0};
    for (size_t n = 0; n < k; ++n) {
      if (n == m) continue;
      const double d = nodes[m] - nodes[n];
      SDEGEN_CHECK(d != 0.0, "interpolatory_weights needs distinct nodes, got ", nodes[m], " twice");
      std::vector<double> next(c.size() + 1, 0.0);
      for (size_t j = 0; j < c.size(); ++j) {
        next[j + 1] += c[j] / d;
        next[j] -= c[j] * nodes[n] / d;
      }
      c.swap(next);
    }
    for (size_t j = 0; j < k; ++j) w[m] += c[j] * moments[j];
  }
  return w;
}

}  // namespace detail

torch::Tensor detail::adams_step(const torch::Tensor& x, double t, double h,
                                 const std::vector<FieldValue>& values) {
  std::vector<double> v, moments;
  for (const FieldValue& n : values) {
    v.push_back((n.t - t) / h);
    moments.push_back(1.0 / static_cast<double>(moments.size() + 1));
  }
  const std::vector<double> w = interpolatory_weights(v, moments);
  torch::Tensor sum = w[0] * values[0].f;
  for (size_t m = 1; m < values.size(); ++m) sum = sum + w[m] * values[m].f;
  return x + h * sum;
}

Solution solve_ode_adams(const VectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                         const AdamsOptions& o, const Observer& observer) {
  SDEGEN_CHECK(static_cast<bool>(f), "solve_ode_adams: the vector field is empty");
  SDEGEN_CHECK(o.order >= 1 && o.order <= 4, "Adams order must be 1 to 4, got ", o.order);
  detail::check_grid(grid);
  const size_t last = grid.size() - 2;
  size_t i = 0;
  std::deque<detail::FieldValue> history;  // most recent first
  torch::Tensor pending;                   // the corrector's value at the current point
  const detail::GridStep step = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    torch::Tensor fx = pending;
    if (!fx.defined()) {
      fx = detail::evaluate(f, t, x);
      ++nfe;
    }
    pending = torch::Tensor();
    history.push_front({t, fx});
    if (history.size() > static_cast<size_t>(o.order)) history.pop_back();
    std::vector<detail::FieldValue> values(history.begin(), history.end());
    const double h = t_next - t;
    torch::Tensor next = detail::adams_step(x, t, h, values);
    if (o.corrector && i < last) {
      pending = detail::evaluate(f, t_next, next);
      ++nfe;
      values.insert(values.begin(), {t_next, pending});
      next = detail::adams_step(x, t, h, values);
    }
    ++i;
    return next;
  };
  return detail::march(grid, x0, step, observer);
}

}  // namespace sdegen
