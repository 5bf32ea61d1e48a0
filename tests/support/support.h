#pragma once
// Shared test helpers: tensor comparison, "throws with message", finite differences.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

namespace sdegen::test {

// Max absolute difference between two tensors of the same shape.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// Central difference of a scalar function of a tensor of times, elementwise.
inline torch::Tensor central_difference(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                        const torch::Tensor& t, double h = 1e-6) {
  return (f(t + h) - f(t - h)) / (2 * h);
}

// n + 1 evenly spaced times from t0 to t1, either direction (decreasing grids test backward
// solves, which the library's make_time_grid does not build).
inline std::vector<double> uniform_grid(int n, double t0 = 0.0, double t1 = 1.0) {
  std::vector<double> g(n + 1);
  for (int i = 0; i <= n; ++i) g[i] = t0 + (t1 - t0) * i / n;
  g.back() = t1;
  return g;
}

// Least-squares slope of log(err) against log(h): a measured convergence order.
inline double log_log_slope(const std::vector<double>& h, const std::vector<double>& err) {
  double mx = 0, my = 0;
  for (size_t i = 0; i < h.size(); ++i) mx += std::log(h[i]) / h.size(), my += std::log(err[i]) / h.size();
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    sxy += (std::log(h[i]) - mx) * (std::log(err[i]) - my);
    sxx += (std::log(h[i]) - mx) * (std::log(h[i]) - mx);
  }
  return sxy / sxx;
}

// A file path under the temporary directory that no other test process uses: ctest runs tests
// in parallel, each in its own process.
// The device the device-agnostic tests run on: SDEGEN_TEST_DEVICE (cpu, cuda, cuda:N), default cpu.
// The CPU suite runs them on the CPU; scripts/gpu_check.sh runs them again with cuda.
inline std::string test_device_name() {
  const char* d = std::getenv("SDEGEN_TEST_DEVICE");
  return d != nullptr && *d != 0 ? d : "cpu";
}

inline std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "sdegen_" + std::to_string(::getpid()) + "_" + name;
}

// A gtest parameter name from a schedule or solver name ("vp-cosine" -> "vp_cosine").
inline std::string param_name(std::string name) {
  std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return name;
}

// The lines of a text file (none if it cannot be read).
inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The cells of one CSV line, as text; a trailing comma ends with an empty cell.
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.push_back("");
  return cells;
}

}  // namespace sdegen::test

// Expects `statement` to throw `type` whose what() contains `fragment`.
#define EXPECT_THROW_WITH(statement, type, fragment)                                  \
  do {                                                                                \
    try {                                                                             \
      statement;                                                                      \
      ADD_FAILURE() << "expected " #type " containing '" << (fragment) << "'";        \
    } catch (const type& e) {                                                         \
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)              \
          << "message was: " << e.what();                                             \
    }                                                                                 \
  } while (0)
