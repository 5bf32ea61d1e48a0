#include "sdegen/objective/coupling.h"

// LEMON's SmartDigraph::addNode copies a node record GCC 12 thinks may be uninitialized (in the
// inlined std::vector::push_back of lemon/smart_graph.h); the record is a plain struct it fills
// right after. Silenced for this file, which is all that includes LEMON.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <lemon/network_simplex.h>
#include <lemon/smart_graph.h>

#include <cmath>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

// Squared distances between the rows of a [n, *] and b [n, *], in double.
torch::Tensor squared_distances(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = a.flatten(1).to(torch::kDouble), z = b.flatten(1).to(torch::kDouble);
  return (x.pow(2).sum(1, true) + z.pow(2).sum(1).unsqueeze(0) - 2.0 * x.matmul(z.t())).clamp_min(0.0);
}

// The rows of eps for the rows of y within one group (all rows, or one class).
torch::Tensor couple_group(const torch::Tensor& y, const torch::Tensor& eps, const CouplingOptions& o) {
  const int64_t n = y.size(0);
  if (n <= 1) return eps;
  const torch::Tensor cost = squared_distances(y, eps);
  if (o.kind == "ot") {
    const std::vector<int64_t> perm = optimal_assignment(cost);
    return eps.index_select(0, torch::tensor(perm, torch::kLong).to(eps.device()));
  }
  const torch::Tensor plan = sinkhorn_plan(cost, o.epsilon, o.iterations);
  const torch::Tensor rows = torch::multinomial(plan, 1, /*replacement=*/true).squeeze(1);
  return eps.index_select(0, rows.to(eps.device()));
}

}  // namespace

std::vector<std::string> coupling_names() { return {"independent", "ot", "ot-sinkhorn"}; }

void check_coupling(const CouplingOptions& o) {
  check_name("coupling", o.kind, coupling_names());
  SDEGEN_CHECK(std::isfinite(o.epsilon) && o.epsilon > 0, "coupling epsilon must be a positive number, got ",
               o.epsilon);
  SDEGEN_CHECK(o.iterations >= 1, "coupling iterations must be >= 1, got ", o.iterations);
}

std::vector<int64_t> optimal_assignment(const torch::Tensor& cost_in) {
  SDEGEN_CHECK(cost_in.dim() == 2 && cost_in.size(0) == cost_in.size(1), "optimal_assignment needs a square cost ",
               "matrix, got ", cost_in.sizes());
  const torch::Tensor cost = cost_in.to(torch::kDouble).contiguous();
  SDEGEN_CHECK(cost.isfinite().all().item<bool>(), "optimal_assignment: the costs must be finite");
  const int64_t n = cost.size(0);
  if (n == 0) return {};
  // The network simplex needs integer costs: scale the largest magnitude to 2^40, which keeps 12
  // significant digits and leaves n * 2^41 far below the 64-bit range.
  const double largest = cost.abs().max().item<double>();
  const double scale = largest > 0 ? std::ldexp(1.0, 40) / largest : 1.0;
  const double* c = cost.data_ptr<double>();
  lemon::SmartDigraph graph;
  graph.reserveNode(static_cast<int>(2 * n));
  graph.reserveArc(static_cast<int>(n * n));
  std::vector<lemon::SmartDigraph::Node> rows, cols;
  for (int64_t i = 0; i < n; ++i) rows.push_back(graph.addNode());
  for (int64_t j = 0; j < n; ++j) cols.push_back(graph.addNode());
  lemon::SmartDigraph::ArcMap<int64_t> weights(graph);
  lemon::SmartDigraph::NodeMap<int64_t> supply(graph);
  std::vector<lemon::SmartDigraph::Arc> arcs;
  arcs.reserve(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i) {
    supply[rows[i]] = 1;
    supply[cols[i]] = -1;
    for (int64_t j = 0; j < n; ++j) {
      arcs.push_back(graph.addArc(rows[i], cols[j]));
      weights[arcs.back()] = std::llround(c[i * n + j] * scale);
    }
  }
  lemon::NetworkSimplex<lemon::SmartDigraph, int64_t, int64_t> simplex(graph);
  const auto status = simplex.costMap(weights).supplyMap(supply).run();
  SDEGEN_CHECK(status == decltype(simplex)::OPTIMAL, "optimal_assignment: the network simplex found no optimum");
  std::vector<int64_t> perm(static_cast<size_t>(n), -1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (simplex.flow(arcs[static_cast<size_t>(i * n + j)]) > 0) perm[static_cast<size_t>(i)] = j;
  return perm;
}

torch::Tensor sinkhorn_plan(const torch::Tensor& cost_in, double epsilon, int iterations) {
  SDEGEN_CHECK(cost_in.dim() == 2 && cost_in.size(0) == cost_in.size(1) && cost_in.size(0) >= 1,
               "sinkhorn_plan needs a square cost matrix, got ", cost_in.sizes());
  const torch::Tensor cost = cost_in.to(torch::kDouble);
  const int64_t n = cost.size(0);
  const double mean = cost.mean().item<double>();
  // In log space: f and g are the log scalings, so no kernel entry underflows at small epsilon.
  const torch::Tensor logk = -cost / (epsilon * (mean > 0 ? mean : 1.0));
  const double log_marginal = -std::log(static_cast<double>(n));
  torch::Tensor f = torch::zeros({n}, torch::kDouble), g = torch::zeros({n}, torch::kDouble);
  for (int k = 0; k < iterations; ++k) {
    f = log_marginal - torch::logsumexp(logk + g.unsqueeze(0), 1);
    g = log_marginal - torch::logsumexp(logk + f.unsqueeze(1), 0);
  }
  return torch::exp(logk + f.unsqueeze(1) + g.unsqueeze(0));
}

torch::Tensor couple(const torch::Tensor& y, const torch::Tensor& eps, const torch::Tensor& labels,
                     const CouplingOptions& o) {
  check_coupling(o);
  if (o.kind == "independent") return eps;
  SDEGEN_CHECK(y.sizes() == eps.sizes(), "couple: the data ", y.sizes(), " and the prior draws ", eps.sizes(),
               " must have the same shape");
  torch::NoGradGuard no_grad;
  if (!labels.defined()) return couple_group(y, eps, o);
  SDEGEN_CHECK(labels.dim() == 1 && labels.size(0) == y.size(0), "couple: labels must be [", y.size(0), "], got ",
               labels.sizes());
  // Within each class: the class's data rows take the class's prior draws.
  torch::Tensor out = eps.clone();
  const torch::Tensor cpu_labels = labels.to(torch::kCPU);
  const torch::Tensor classes = std::get<0>(torch::_unique(cpu_labels)).to(torch::kLong).contiguous();
  for (int64_t k = 0; k < classes.size(0); ++k) {
    const torch::Tensor rows = (cpu_labels == classes[k]).nonzero().squeeze(1).to(eps.device());
    out.index_copy_(0, rows, couple_group(y.index_select(0, rows), eps.index_select(0, rows), o));
  }
  return out;
}

}  // namespace sdegen
