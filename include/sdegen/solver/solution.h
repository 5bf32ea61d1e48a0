#pragma once
// What every solve returns, and the callbacks a solver sees. A solver never sees a model: only
// a vector field, a time grid (or an interval and tolerances) and an initial state.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "sdegen/core/time_grid.h"

namespace sdegen {

// dx/dt = f(t, x); x is [batch, ...], the result has x's shape.
using VectorField = std::function<torch::Tensor(double t, const torch::Tensor& x)>;
// dx/dt = f(t, x) on raw buffers: writes the field at (t, x) for the n rows of x (row-major
// [n, d], d fixed by the solve) into dx. For fields that evaluate without tensors (a network run
// by net/mlp_kernel.h), so a small batch pays no per-operation overhead.
using RawVectorField = std::function<void(double t, const double* x, int64_t n, double* dx)>;
// sigma(t, x) of dx = f dt + sigma dW; broadcasts against x (a 0-dim tensor is fine; for one
// value per row return per_row(sigma, x) from core/tensor.h).
using DiffusionField = std::function<torch::Tensor(double t, const torch::Tensor& x)>;
// Called with each accepted state, the initial one included.
using Observer = std::function<void(double t, const torch::Tensor& x)>;

enum class SolveStatus { Success, NonFinite, StepSizeUnderflow, MaxStepsReached };

std::string status_name(SolveStatus status);

struct Solution {
  torch::Tensor x;        // the state at the last time reached
  double t = 0.0;         // that time (the end time when status is Success)
  int64_t nfe = 0;        // vector-field evaluations (drift and score evaluations for SDEs)
  int64_t steps = 0;      // accepted steps
  int64_t rejected = 0;   // rejected steps (adaptive solvers)
  SolveStatus status = SolveStatus::Success;
  std::string message;    // what went wrong and what to do about it; empty on success

  bool ok() const { return status == SolveStatus::Success; }
  // Throws NumericError with the message unless ok(); returns *this otherwise.
  const Solution& check() const;
};

// Pieces shared by the solvers; not part of the public API.
namespace detail {

// Refuse bad input at the boundary (InvalidArgument naming the value).
void check_initial_state(const torch::Tensor& x0);
void check_grid(const TimeGrid& grid);  // at least two finite, strictly monotone points

// f(t, x), refusing an output whose shape differs from x's (it would broadcast silently).
torch::Tensor evaluate(const VectorField& f, double t, const torch::Tensor& x);

// One step of a fixed-grid solver from (t, x) to t_next; adds its evaluations to nfe.
using GridStep =
    std::function<torch::Tensor(double t, double t_next, const torch::Tensor& x, int64_t& nfe)>;

// Walks the grid with step, observing each state; stops with NonFinite at the first
// non-finite state and returns the last finite one.
Solution march(const TimeGrid& grid, const torch::Tensor& x0, const GridStep& step,
               const Observer& observer);

}  // namespace detail
}  // namespace sdegen
