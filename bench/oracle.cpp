// Workload 5: solver efficiency on the exact oracle. For a 1-D and a 2-D Gaussian mixture and
// each schedule, the fewest function evaluations with which each deterministic sampler brings
// the distance between its samples and a tight-tolerance reference solution (dopri5 at
// rtol = atol = 1e-10, the same prior draws) below the tolerance: the 1-D Wasserstein-1
// distance, or in 2-D the sliced one. No PyTorch peer: the limit is the exact flow itself.
//   bench_oracle [--n 20000] [--tol 2e-3] [--threads T]
// nfe -1: not reached within 64 fixed steps (dopri5: rtol 1e-5), or refused (the row says why).
// A case is the solver, and where it is not the solver's default, @grid and :time
// (flow = a / (a + b)). edm is its deterministic Heun sampler (churn 0): 2 evaluations a step.
//
// Workload 5s: the stochastic samplers, which no pathwise reference can judge: the mean distance
// of 10 chunks of 1000 sampled points to as many fresh data points, as a ratio to the two-sample
// floor (the mean distance between 10 pairs of data samples of 1000: one distance alone spreads
// by +-40%, the mean of 10 by about +-13%), at about 10 to 500 evaluations (each row gives the
// evaluations actually spent), under vp (a > 0 at t = 0, so every sampler starts).
//   --only stochastic runs this part alone
#include <cmath>

#include "common.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/sample/sampler.h"

namespace {

struct Config {
  std::string solver, grid, time;  // empty grid/time: the solver's default
  std::string label() const {
    return solver + (grid.empty() ? "" : "@" + grid) + (time.empty() ? "" : ":" + time);
  }
};

// A stochastic sampler by name and its evaluations per step (the last step may cost less).
struct Stochastic {
  std::string label;
  sdegen::SamplerOptions options;
  int per_step;
};

std::vector<Stochastic> stochastic_configs() {
  auto make = [](const std::string& label, const std::string& solver, int per_step) {
    sdegen::SamplerOptions o;
    o.solver = solver;
    return Stochastic{label, o, per_step};
  };
  std::vector<Stochastic> out = {make("ddpm", "ddpm", 1), make("reverse-diffusion", "reverse-diffusion", 1),
                                 make("pc:reverse-diffusion", "pc", 2), make("euler-maruyama:reverse", "euler-maruyama", 1),
                                 make("edm", "edm", 2), make("edm:churn=20", "edm", 2)};
  out[2].options.pc.predictor = "reverse-diffusion";
  out[3].options.diffusion = sdegen::parse_diffusion("reverse");
  out[5].options.edm.churn = 20;
  return out;
}

constexpr int64_t kChunk = 1000, kChunks = 10;

// The mean distance between matching chunks of a and b.
double chunked_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return sdegen::chunked_sample_distance(a, b, kChunk, kChunks);
}

void stochastic_samplers() {
  const int64_t n = kChunk * kChunks;
  for (const std::string data : {"gmm1d", "gmm2d"}) {
    const sdegen::DensityPtr density = sdegen::make_density(data);
    const sdegen::GmmOracle oracle(*density->mixture(), sdegen::make_schedule("vp"));
    const double floor = chunked_distance(density->sample(n), density->sample(n));
    for (const Stochastic& c : stochastic_configs()) {
      for (int nfe : {10, 20, 50, 100, 200, 500}) {
        sdegen::SamplerOptions o = c.options;
        o.steps = std::max(1, nfe / c.per_step);
        const torch::Tensor x0 = torch::randn({n, density->dim()}, torch::kDouble);
        const auto start = bench::Clock::now();
        const sdegen::Solution sol = sdegen::sample(oracle, x0, o);
        const double ms = bench::ms_since(start);
        sol.check();
        const double dist = chunked_distance(sol.x, density->sample(n));
        bench::report("5s-oracle-stochastic", data + "/vp/" + c.label + "/" + std::to_string(nfe), {ms},
                      {{"nfe", sol.nfe}, {"distance", dist}, {"floor", floor}, {"ratio", dist / floor}});
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  if (args.str("only", "") == "stochastic") return stochastic_samplers(), 0;
  const int64_t n = args.integer("n", 20000);
  const double tol = args.real("tol", 2e-3);
  // Every count to 16, where the one-evaluation-per-step solvers are decided.
  std::vector<int> step_counts;
  for (int s = 1; s <= 16; ++s) step_counts.push_back(s);
  for (int s : {20, 25, 32, 40, 50, 64}) step_counts.push_back(s);
  const std::vector<double> rtols = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5};
  const std::vector<Config> configs = {
      {"euler", "", ""},   {"midpoint", "", ""},        {"heun", "", ""},  {"rk4", "", ""},
      {"rk4", "flow", "flow"}, {"abm3", "", ""},        {"abm4", "", ""},  {"ddim", "", ""},
      {"dpm++2m", "", ""}, {"dpm++3m", "", ""},         {"unipc", "", ""}, {"edm", "", ""},
      {"dopri5", "", ""}};

  for (const std::string data : {"gmm1d", "gmm2d"}) {
    const sdegen::DensityPtr density = sdegen::make_density(data);
    for (const std::string schedule : {"linear", "vp", "trig"}) {
      const sdegen::GmmOracle oracle(*density->mixture(), sdegen::make_schedule(schedule));
      // Where b(1) = 0 the data end is singular for the multistep solvers' lambda grid (and vp's
      // flow time): stop just short of it, as generate() does for a trained model.
      const double t1 = oracle.schedule().b(1.0) == 0.0 ? 1.0 - 1e-3 : 1.0;
      const torch::Tensor x0 = torch::randn({n, density->dim()}, torch::kDouble);
      sdegen::SamplerOptions ref_options;
      ref_options.solver = "dopri5";
      ref_options.t1 = t1;
      ref_options.adaptive.rtol = ref_options.adaptive.atol = 1e-10;
      const sdegen::Solution reference = sdegen::sample(oracle, x0, ref_options);
      reference.check();

      for (const Config& c : configs) {
        sdegen::SamplerOptions o;
        o.solver = c.solver;
        o.grid = c.grid;
        o.time = c.time;
        o.t1 = t1;
        int64_t nfe = -1;
        double dist = NAN, ms = 0;
        std::string refused;
        const size_t tries = c.solver == "dopri5" ? rtols.size() : step_counts.size();
        for (size_t i = 0; i < tries; ++i) {
          if (c.solver == "dopri5") o.adaptive.rtol = o.adaptive.atol = rtols[i];
          else o.steps = step_counts[i];
          sdegen::Solution sol;
          try {
            const auto start = bench::Clock::now();
            sol = sdegen::sample(oracle, x0, o);
            ms = bench::ms_since(start);
          } catch (const std::exception& e) {
            refused = e.what();
            continue;  // e.g. a grid too coarse for the solver: try more steps
          }
          refused.clear();
          if (!sol.ok()) continue;
          dist = sdegen::sample_distance(sol.x, reference.x);
          if (dist < tol) {
            nfe = sol.nfe;
            break;
          }
        }
        bench::report("5-oracle", data + "/" + schedule + "/" + c.label(), {ms},
                      {{"nfe", nfe}, {"distance", dist}, {"tol", tol}, {"reference_nfe", reference.nfe}});
        if (!refused.empty()) std::cout << "  refused: " << refused << "\n";
      }
    }
  }
  stochastic_samplers();
}
