#include "sdegen/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

std::vector<double> sorted_values(const torch::Tensor& x, const char* what) {
  SDEGEN_CHECK(x.defined() && x.numel() > 0, what, " sample is empty");
  SDEGEN_CHECK(x.dim() == 1 || (x.dim() == 2 && x.size(1) == 1), what,
               " sample must be 1-D ([n] or [n, 1]), got shape ", x.sizes());
  const torch::Tensor c = x.detach().to(torch::kCPU, torch::kDouble).contiguous().reshape({-1});
  SDEGEN_CHECK(torch::isfinite(c).all().item<bool>(), what, " sample has non-finite values");
  std::vector<double> v(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  std::sort(v.begin(), v.end());
  return v;
}

// Walks the merged order of two sorted samples, calling visit(gap, F_a, F_b) on each interval
// between consecutive distinct points, with the empirical CDFs on that interval.
template <typename Visit>
void walk_cdfs(const std::vector<double>& a, const std::vector<double>& b, Visit visit) {
  size_t i = 0, j = 0;
  const double na = a.size(), nb = b.size();
  double x = std::min(a.front(), b.front());
  while (i < a.size() || j < b.size()) {
    const double next = (j == b.size() || (i < a.size() && a[i] <= b[j])) ? a[i] : b[j];
    visit(next - x, i / na, j / nb);
    x = next;
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
  }
  visit(0.0, i / na, j / nb);
}

}  // namespace

double wasserstein1(const torch::Tensor& a, const torch::Tensor& b) {
  const auto va = sorted_values(a, "first"), vb = sorted_values(b, "second");
  double w = 0.0;
  walk_cdfs(va, vb, [&](double gap, double fa, double fb) { w += gap * std::abs(fa - fb); });
  return w;
}

double ks_statistic(const torch::Tensor& a, const torch::Tensor& b) {
  const auto va = sorted_values(a, "first"), vb = sorted_values(b, "second");
  double d = 0.0;
  walk_cdfs(va, vb, [&](double, double fa, double fb) { d = std::max(d, std::abs(fa - fb)); });
  return d;
}

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections,
                          uint64_t seed) {
  SDEGEN_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1),
               "sliced Wasserstein needs two [n, d] samples of the same d, got ", a.sizes(), " and ",
               b.sizes());
  SDEGEN_CHECK(projections > 0, "number of projections must be positive, got ", projections);
  auto gen = at::detail::createCPUGenerator(seed);
  torch::Tensor dirs = at::randn({a.size(1), projections}, gen, torch::kDouble);
  dirs = dirs / dirs.norm(2, 0, true);
  const torch::Tensor pa = a.detach().to(torch::kCPU, torch::kDouble).matmul(dirs);
  const torch::Tensor pb = b.detach().to(torch::kCPU, torch::kDouble).matmul(dirs);
  double total = 0.0;
  for (int64_t k = 0; k < projections; ++k) total += wasserstein1(pa.select(1, k), pb.select(1, k));
  return total / projections;
}

}  // namespace sdegen
