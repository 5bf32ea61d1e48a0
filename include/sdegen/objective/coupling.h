#pragma once
// Minibatch couplings of data and prior draws (math.md, "Few-step generation"). Flow matching
// regresses the velocity of the path from a prior draw eps to a data point y; with independent
// draws the straight paths of a batch cross, and the learned flow, which averages them, bends.
// Pairing each y with a nearby eps straightens the flow, so that a few Euler steps suffice:
//   independent  eps as drawn
//   ot           the permutation of the draws minimising sum_i |y_i - eps_pi(i)|^2: an exact
//                assignment by LEMON's network simplex (liblemon-dev, a maintained min-cost-flow
//                solver) on the costs scaled to integers, as it requires
//   ot-sinkhorn  for each y_i a draw from row i of the entropic plan (Sinkhorn's iterations in
//                log space on the cost divided by its mean, with regularisation epsilon)
// Labelled rows are coupled within their class: across classes OT would pair a class's data with
// noise meant for another label, which is known to hurt conditional models.
// The coupling changes the training pairs only; the ELBO (validation, eval) keeps independent
// draws.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sdegen {

struct CouplingOptions {
  std::string kind = "independent";  // independent | ot | ot-sinkhorn
  double epsilon = 0.05;             // ot-sinkhorn: the regularisation relative to the mean cost, > 0
  int iterations = 100;              // ot-sinkhorn: Sinkhorn iterations, >= 1
};

std::vector<std::string> coupling_names();
// Refuses an unknown kind, epsilon <= 0 (or not finite) and iterations < 1, naming them.
void check_coupling(const CouplingOptions& options);

// The prior draws eps [B, *shape] paired with y [B, *shape] (row i of the result goes with y_i):
// eps itself, a permutation of its rows (ot) or rows drawn from the plan (ot-sinkhorn, with
// torch's default generator). labels: [B] class labels, or undefined for no classes.
torch::Tensor couple(const torch::Tensor& y, const torch::Tensor& eps, const torch::Tensor& labels,
                     const CouplingOptions& options);

// The assignment minimising sum_i cost[i][perm[i]] for a square matrix of finite costs [n, n].
std::vector<int64_t> optimal_assignment(const torch::Tensor& cost);

// The entropic plan [n, n] between uniform marginals 1/n for the costs [n, n]: P = diag(u) K
// diag(v) with K = exp(-cost / (epsilon * mean cost)).
torch::Tensor sinkhorn_plan(const torch::Tensor& cost, double epsilon, int iterations);

}  // namespace sdegen
