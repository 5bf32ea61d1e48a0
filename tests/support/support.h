#pragma once
// Shared test helpers: tensor comparison, "throws with message", finite differences.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>

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
