#pragma once
// The trainer's checks of what it is given (trainer.cpp): the rows, their condition vectors and
// their labels against the model, each refused with a message naming what is wrong, and returned
// as the trainer uses them. Private to src/train.
#include <torch/torch.h>

#include <cstdint>

#include "sdegen/model/generative_model.h"

namespace sdegen::detail {

// x [n >= 1, *model.shape()] floating point and finite, detached, in `like`'s dtype and on its device.
torch::Tensor checked_rows(const torch::Tensor& x, const GenerativeModel& model, const torch::Tensor& like,
                           const char* what);

// The condition vectors of the rows of x for a model taking vectors of width k: [rows, k] finite, in
// x's dtype and on its device, or undefined for a model without one (which refuses them).
torch::Tensor checked_conditions(const torch::Tensor& c, const torch::Tensor& x, int64_t k, const char* what);

// The labels of `rows` rows for a model with `classes` classes: [rows] int64 in range, or
// undefined for an unconditional model (which refuses labels).
torch::Tensor checked_labels(const torch::Tensor& labels, int64_t rows, int64_t classes, const char* what);

}  // namespace sdegen::detail
