#include "train_inputs.h"

#include <string>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen::detail {

torch::Tensor checked_rows(const torch::Tensor& x, const GenerativeModel& model, const torch::Tensor& like,
                           const char* what) {
  const std::vector<int64_t> shape = model.shape();
  SDEGEN_CHECK(x.dim() == static_cast<int64_t>(shape.size()) + 1 && x.size(0) >= 1 &&
                   x.sizes().slice(1) == c10::IntArrayRef(shape),
               "train: ", what, " data must have shape [n >= 1, ", join([&] {
                 std::vector<std::string> s;
                 for (const int64_t v : shape) s.push_back(std::to_string(v));
                 return s;
               }()), "] for this model, got ", x.sizes());
  SDEGEN_CHECK(x.is_floating_point(), "train: ", what, " data must be floating point, got ", x.scalar_type());
  SDEGEN_CHECK(all_finite(x), "train: ", what, " data contain NaN or infinite values");
  return x.detach().to(like.device(), like.scalar_type()).contiguous();
}

torch::Tensor checked_conditions(const torch::Tensor& c, const torch::Tensor& x, int64_t k, const char* what) {
  if (k == 0) {
    SDEGEN_CHECK(!c.defined(), "train: the model takes no condition vector but ", what, " conditions were given");
    return {};
  }
  SDEGEN_CHECK(c.defined(), "train: the model is conditioned on a vector of ", k, " values and needs ", what,
               " conditions");
  SDEGEN_CHECK(c.dim() == 2 && c.size(0) == x.size(0) && c.size(1) == k && c.is_floating_point(), "train: ", what,
               " conditions must be floating point of shape [", x.size(0), ", ", k, "], got ", c.sizes(), " ",
               c.scalar_type());
  SDEGEN_CHECK(all_finite(c), "train: ", what, " conditions contain NaN or infinite values");
  return c.detach().to(x.device(), x.scalar_type()).contiguous();
}

torch::Tensor checked_labels(const torch::Tensor& labels, int64_t rows, int64_t classes, const char* what) {
  if (classes == 0) {
    SDEGEN_CHECK(!labels.defined(), "train: the model is unconditional but ", what, " labels were given");
    return {};
  }
  SDEGEN_CHECK(labels.defined(), "train: the model is conditioned on ", classes, " classes and needs ", what,
               " labels");
  SDEGEN_CHECK(labels.dim() == 1 && labels.size(0) == rows && !labels.is_floating_point(), "train: ", what,
               " labels must be integers of shape [", rows, "], got ", labels.sizes(), " ", labels.scalar_type());
  const torch::Tensor l = labels.to(torch::kLong);
  SDEGEN_CHECK(l.min().item<int64_t>() >= 0 && l.max().item<int64_t>() < classes, "train: ", what,
               " labels must lie in [0, ", classes, "), got values in [", l.min().item<int64_t>(), ", ",
               l.max().item<int64_t>(), "]");
  return l.contiguous();
}

}  // namespace sdegen::detail
