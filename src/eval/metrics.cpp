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

namespace {

torch::Tensor as_points(const torch::Tensor& x, const char* what) {
  SDEGEN_CHECK(x.defined() && x.numel() > 0, what, " sample is empty");
  SDEGEN_CHECK(x.dim() == 1 || x.dim() == 2, what, " sample must be [n] or [n, d], got shape ", x.sizes());
  torch::Tensor c = x.detach().to(torch::kCPU, torch::kDouble).contiguous();
  if (c.dim() == 1) c = c.unsqueeze(1);
  SDEGEN_CHECK(torch::isfinite(c).all().item<bool>(), what, " sample has non-finite values");
  return c;
}

std::pair<torch::Tensor, torch::Tensor> point_pair(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor pa = as_points(a, "first"), pb = as_points(b, "second");
  SDEGEN_CHECK(pa.size(1) == pb.size(1), "two-sample statistics need samples of the same d, got ", a.sizes(),
               " and ", b.sizes());
  return {pa, pb};
}

// Exact Euclidean distances (no |x|^2 + |y|^2 - 2 x.y expansion, whose rounding would make the
// distance of a point to itself ~1e-8 instead of 0).
torch::Tensor distances(const torch::Tensor& a, const torch::Tensor& b) {
  return at::cdist(a, b, 2.0, /*compute_mode=donot_use_mm_for_euclid_dist=*/2);
}

// The mean over every pair (i, j) of f(|a_i - b_j|), summed block by block.
template <typename F>
double mean_over_pairs(const torch::Tensor& a, const torch::Tensor& b, F f) {
  double total = 0.0;
  for (int64_t i = 0; i < a.size(0); i += kPairBlock) {
    const torch::Tensor ai = a.narrow(0, i, std::min(kPairBlock, a.size(0) - i));
    for (int64_t j = 0; j < b.size(0); j += kPairBlock) {
      const torch::Tensor bj = b.narrow(0, j, std::min(kPairBlock, b.size(0) - j));
      total += f(distances(ai, bj)).sum().template item<double>();
    }
  }
  return total / (static_cast<double>(a.size(0)) * static_cast<double>(b.size(0)));
}

torch::Tensor evenly_spaced_rows(const torch::Tensor& x, int64_t count) {
  if (x.size(0) <= count) return x;
  return x.index_select(0, torch::linspace(0, x.size(0) - 1, count, torch::kDouble).round().to(torch::kLong));
}

}  // namespace

double median_bandwidth(const torch::Tensor& a, const torch::Tensor& b, int64_t max_points) {
  auto [pa, pb] = point_pair(a, b);
  SDEGEN_CHECK(max_points >= 2, "median bandwidth needs max_points >= 2, got ", max_points);
  const int64_t total = pa.size(0) + pb.size(0);
  if (total > max_points) {
    const int64_t na = std::max<int64_t>(1, max_points * pa.size(0) / total);
    pa = evenly_spaced_rows(pa, na);
    pb = evenly_spaced_rows(pb, std::max<int64_t>(1, max_points - na));
  }
  const torch::Tensor pool = torch::cat({pa, pb}, 0);
  SDEGEN_CHECK(pool.size(0) >= 2, "median bandwidth needs at least two points");
  const torch::Tensor d = distances(pool, pool);
  const torch::Tensor upper = d.masked_select(torch::ones_like(d, torch::kBool).triu(1));
  const double h = upper.median().item<double>();
  SDEGEN_CHECK(h > 0, "median bandwidth is 0: more than half of the pairs of points coincide; "
                      "give the bandwidth explicitly");
  return h;
}

double mmd_rbf(const torch::Tensor& a, const torch::Tensor& b, double bandwidth) {
  const auto [pa, pb] = point_pair(a, b);
  SDEGEN_CHECK(std::isfinite(bandwidth), "MMD bandwidth must be finite, got ", bandwidth);
  const double h = bandwidth > 0 ? bandwidth : median_bandwidth(pa, pb);
  const auto kernel = [h](const torch::Tensor& d) { return torch::exp(-0.5 * (d / h).pow(2)); };
  const double m2 = mean_over_pairs(pa, pa, kernel) + mean_over_pairs(pb, pb, kernel) -
                    2.0 * mean_over_pairs(pa, pb, kernel);
  return std::sqrt(std::max(m2, 0.0));  // rounding can leave -1e-17 for identical samples
}

double energy_distance(const torch::Tensor& a, const torch::Tensor& b) {
  const auto [pa, pb] = point_pair(a, b);
  const auto id = [](const torch::Tensor& d) { return d; };
  const double e = 2.0 * mean_over_pairs(pa, pb, id) - mean_over_pairs(pa, pa, id) - mean_over_pairs(pb, pb, id);
  return std::max(e, 0.0);
}

double sample_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return a.dim() == 2 && a.size(1) == 1 ? wasserstein1(a, b) : sliced_wasserstein(a, b);
}

double chunked_sample_distance(const torch::Tensor& a, const torch::Tensor& b, int64_t chunk, int64_t chunks) {
  SDEGEN_CHECK(chunk >= 1 && chunks >= 1, "chunked_sample_distance needs chunk >= 1 and chunks >= 1, got ", chunk,
               " and ", chunks);
  SDEGEN_CHECK(a.size(0) >= chunk * chunks && b.size(0) >= chunk * chunks, "chunked_sample_distance: ", chunks,
               " chunks of ", chunk, " rows need ", chunk * chunks, " rows in each sample, got ", a.size(0), " and ",
               b.size(0));
  double sum = 0.0;
  for (int64_t k = 0; k < chunks; ++k)
    sum += sample_distance(a.slice(0, k * chunk, (k + 1) * chunk), b.slice(0, k * chunk, (k + 1) * chunk));
  return sum / static_cast<double>(chunks);
}

}  // namespace sdegen
