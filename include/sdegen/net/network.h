#pragma once
// The one interface every network has, whatever its architecture: a raw function
//
//   (x [B, *shape], t [B] or 0-dim, condition) -> [B, *shape]
//
// A model (flow, diffusion, score, vdm, sde, ode) wraps a network with its schedule,
// prediction and preconditioning and never looks at its layers; the MLP (net/mlp.h) and the
// U-Net (net/unet.h) are two networks. The fused kernels (net/mlp_kernel.h) stay the MLP's fast
// path: a model asks as_mlp() and falls back to autograd through forward() for any other net.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sdegen {

class MlpImpl;

// The label that means "no label": classifier-free guidance's null condition. A conditional
// network learns it as one more class (the unconditional model in the same weights).
constexpr int64_t kNullLabel = -1;

// What a network is conditioned on besides time: a class label, a condition vector (observed
// values, e.g. a robot's state: `--condition-columns`), or both; an unconditional network gets an
// empty Condition.
struct Condition {
  Condition() = default;
  /* implicit */ Condition(torch::Tensor labels) : labels(std::move(labels)) {}
  torch::Tensor labels;  // [B] int64: a class in [0, num_classes) or kNullLabel; undefined: none
  // [B, condition_dim] floating point: the observed values; undefined: no vector (every row null).
  torch::Tensor vector;
  // [B] floating point, 1 where the row's vector is observed and 0 where it is dropped (the null
  // condition of classifier-free guidance); undefined: every row of `vector` is observed.
  torch::Tensor present;
  // Training only, never seen by a network: the prior point each row is paired with, [B, *shape]
  // (a given coupling: reflow's pairs, train/reflow.h); undefined: the model draws its own.
  torch::Tensor source;
  // True where every value of `vector` is already known to be finite (checked once where the rows
  // came in: the trainer's rows, a sampler's observation; see checked_finite), so that a network's
  // forward skips its own check: a reduction and a host sync per call. Kept by slice, select,
  // with_null_rows and drop_rows.
  bool vector_finite = false;
  // No labels and no vector (a source alone conditions no network).
  bool empty() const { return !labels.defined() && !vector.defined(); }
  // The rows [start, start + length) of every field.
  Condition slice(int64_t start, int64_t length) const;
  // The rows `rows` [k] (int64) of every field.
  Condition select(const torch::Tensor& rows) const;
};

// `condition` with its vector's values checked once (InvalidArgument naming `who` for a NaN or
// an infinity) and marked vector_finite, for the calls that follow.
Condition checked_finite(const std::string& who, Condition condition);

// The rows of `condition` followed by as many null rows (labels kNullLabel, vectors absent): the
// conditional and unconditional halves of one guided network call (math.md's guidance).
Condition with_null_rows(const Condition& condition);

// `condition` with each row dropped to the null condition where drop [B] (bool) is true: its label
// becomes kNullLabel and its vector absent (one draw drops both).
Condition drop_rows(const Condition& condition, const torch::Tensor& drop);

// The rows of a condition as they enter a network with condition_dim inputs: [B, condition_dim +
// 1] = [vector * present, present] in `dtype` on `device`; an absent vector gives zeros, with
// presence 0. Refuses a vector of another width or batch, naming `who`.
torch::Tensor condition_features(const std::string& who, const Condition& condition, int64_t condition_dim,
                                 int64_t batch, torch::ScalarType dtype, const torch::Device& device);

class NetworkImpl : public torch::nn::Module {
 public:
  // x: [B, *shape()] floating point; t: [B] or 0-dim (one time for every example).
  // Returns [B, *shape()] in x's dtype. A conditional network (num_classes() > 0) given an empty
  // condition treats every example as kNullLabel; an unconditional one refuses labels.
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                                const Condition& condition = {}) = 0;
  // The shape of one example: {d} for vectors, {C, H, W} for images.
  virtual std::vector<int64_t> shape() const = 0;
  // Classes the network is conditioned on; 0: unconditional.
  virtual int64_t num_classes() const = 0;
  // Width of the condition vector the network takes (Condition::vector); 0: none.
  virtual int64_t condition_dim() const { return 0; }
  // Everything needed to rebuild the architecture (not the weights), with "type" naming it.
  virtual nlohmann::json config() const = 0;
  // The MLP behind this network when it is one (its fused kernels apply), else nullptr.
  virtual MlpImpl* as_mlp() { return nullptr; }
};

using NetworkPtr = std::shared_ptr<NetworkImpl>;

// "mlp", "unet", "dit".
std::vector<std::string> network_names();

// Builds a network (fresh weights, float32: the model that holds it sets its dtype) from a
// configuration written by config(); refuses an unknown type, key or value, naming it.
NetworkPtr make_network(const nlohmann::json& config);

// The number of elements of one example: the product of shape().
int64_t example_numel(const std::vector<int64_t>& shape);

// Checks that x is [B, *shape] and t is [B] or 0-dim, that the condition's labels (when given)
// are [B] integers in [0, num_classes) or kNullLabel, and that its vector (when given) is [B,
// condition_dim] and finite with presence [B]. `who` names the network in messages.
void check_network_inputs(const std::string& who, const std::vector<int64_t>& shape, int64_t num_classes,
                          const torch::Tensor& x, const torch::Tensor& t, const Condition& condition,
                          int64_t condition_dim = 0);

// Labels as embedding rows: kNullLabel becomes row num_classes (an embedding of num_classes + 1
// rows); a condition without labels gives every example the null row.
torch::Tensor label_rows(const Condition& condition, int64_t num_classes, int64_t batch, const torch::Device& device);

}  // namespace sdegen
