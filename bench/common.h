#pragma once
// Shared helpers of the C++ benchmarks: arguments, threads, timing, memory, reporting.
// Every benchmark prints one line per measurement, `RESULT {json}`, with the same keys as the
// PyTorch references (bench/python/common.py), so scripts/bench.sh can tabulate both.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sdegen/core/vmath.h"

namespace bench {

// --name value pairs from argv.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
      std::string key = argv[i];
      if (key.rfind("--", 0) != 0) {
        std::cerr << "bench: expected --name value pairs, got '" << key << "'\n";
        std::exit(2);
      }
      values_[key.substr(2)] = argv[i + 1];
    }
  }
  std::string str(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  int64_t integer(const std::string& name, int64_t fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : std::stoll(it->second);
  }
  double real(const std::string& name, double fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : std::stod(it->second);
  }

 private:
  std::map<std::string, std::string> values_;
};

inline void setup(const Args& args) {
  torch::set_num_threads(static_cast<int>(args.integer("threads", 2)));
  sdegen::vmath::set_blas_threads(static_cast<int>(args.integer("threads", 2)));
  torch::manual_seed(static_cast<uint64_t>(args.integer("seed", 0)));
}

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Runs step() `warmup` times untimed, then `steps` times; returns each timed call's ms.
template <class Step>
std::vector<double> timed_steps(Step&& step, int64_t warmup, int64_t steps) {
  for (int64_t i = 0; i < warmup; ++i) step();
  std::vector<double> times;
  times.reserve(static_cast<size_t>(steps));
  for (int64_t i = 0; i < steps; ++i) {
    const auto start = Clock::now();
    step();
    times.push_back(ms_since(start));
  }
  return times;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n == 0) return 0.0;
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

inline void report(const std::string& workload, const std::string& name, const std::vector<double>& times_ms,
                   const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json rec = {{"workload", workload},
                        {"case", name},
                        {"impl", "cpp"},
                        {"median_ms", median(times_ms)},
                        {"n", times_ms.size()},
                        {"threads", torch::get_num_threads()},
                        {"rss_mb", peak_rss_mb()}};
  for (const auto& [key, value] : extra.items()) rec[key] = value;
  std::cout << "RESULT " << rec.dump() << std::endl;
}

}  // namespace bench

namespace bench {

// Deterministic weights, the same as bench/python/train_step.py's deterministic_init: the k-th
// parameter whose name starts with `prefix` (in registration order), entry j, gets
// sin(0.37 j + 1.3 k) / sqrt(fan_in). Both implementations then integrate the same ODE, so
// adaptive solvers take the same steps.
inline void deterministic_init(torch::nn::Module& module, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  int64_t k = 0;
  for (auto& item : module.named_parameters()) {
    if (item.key().rfind(prefix, 0) != 0) continue;
    torch::Tensor& p = item.value();
    const int64_t fan_in = p.dim() == 2 ? p.size(1) : p.size(0);
    const torch::Tensor j = torch::arange(p.numel(), p.options());
    p.copy_((torch::sin(0.37 * j + 1.3 * static_cast<double>(k)) / std::sqrt(static_cast<double>(fan_in)))
                .reshape(p.sizes()));
    ++k;
  }
}

}  // namespace bench
