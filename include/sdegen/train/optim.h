#pragma once
// The optimiser's side of a training step on raw buffers. A small network's Adam step in
// torch::optim costs about ten tensor operations per parameter tensor, more than the network's
// own arithmetic; here each parameter is one loop. The arithmetic is torch::optim's own (Adam:
// L2 decay added to the gradient; AdamW: decoupled decay), on the optimiser's own state, so a
// checkpoint saved after either path loads into the other and resumes identically.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace sdegen {

// optimizer.step() for torch::optim::Adam and AdamW (without amsgrad) whose parameters, gradients
// and moments are contiguous float64 CPU tensors; any other optimizer or parameter goes through
// optimizer.step() itself. Parameters without a gradient are skipped, as torch does.
void optimizer_step(torch::optim::Optimizer& optimizer);

// The global L2 norm of the gradients (before clipping); when max_norm > 0 and the norm is
// finite and above it, scales every gradient by max_norm / (norm + 1e-6), as
// torch::nn::utils::clip_grad_norm_ does. Parameters without a gradient are skipped.
double clip_gradients(const std::vector<torch::Tensor>& params, double max_norm);

// The first problem with an Adam or AdamW optimiser's state, as a sentence naming the parameter
// (its index over the parameter groups): a moment whose shape or dtype differs from its
// parameter's, a NaN or infinite moment, a negative step count. Empty when there is none, and for
// other optimisers, whose state is not inspected. For checking a state loaded from disk.
std::string optimizer_state_problem(torch::optim::Optimizer& optimizer);

}  // namespace sdegen
