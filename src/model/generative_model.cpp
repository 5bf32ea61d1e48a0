#include "sdegen/model/generative_model.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

double GenerativeModel::loss_and_gradient(const torch::Tensor& y, const Condition& condition) {
  return autograd_loss_and_gradient(*this, y, condition);
}

double autograd_loss_and_gradient(GenerativeModel& model, const torch::Tensor& y, const Condition& condition) {
  zero_gradients(model.parameters());
  const torch::Tensor loss = model.loss(y, condition);
  SDEGEN_CHECK(loss.numel() == 1, "the '", model.kind(), "' model's loss returned shape ", loss.sizes(),
               ", expected a scalar");
  const double value = loss.item<double>();
  if (std::isfinite(value)) loss.backward();
  return value;
}

void check_unconditional(const GenerativeModel& model, const Condition& condition) {
  SDEGEN_CHECK(!condition.labels.defined(), "the '", model.kind(), "' model is unconditional but was given labels");
  SDEGEN_CHECK(!condition.vector.defined(), "the '", model.kind(),
               "' model takes no condition vector (only flow, diffusion, score and vdm do) but was given one");
}

}  // namespace sdegen
