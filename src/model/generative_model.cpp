#include "sdegen/model/generative_model.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

double GenerativeModel::loss_and_gradient(const torch::Tensor& y) { return autograd_loss_and_gradient(*this, y); }

double autograd_loss_and_gradient(GenerativeModel& model, const torch::Tensor& y) {
  zero_gradients(model.parameters());
  const torch::Tensor loss = model.loss(y);
  SDEGEN_CHECK(loss.numel() == 1, "the '", model.kind(), "' model's loss returned shape ", loss.sizes(),
               ", expected a scalar");
  const double value = loss.item<double>();
  if (std::isfinite(value)) loss.backward();
  return value;
}

}  // namespace sdegen
