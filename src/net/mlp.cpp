#include "sdegen/net/mlp.h"

#include <array>
#include <cmath>
#include <nlohmann/json.hpp>

#include "sdegen/core/check.h"
#include "sdegen/core/json_fields.h"

namespace sdegen {
namespace {

// Replaces each tensor of `to` by a copy of the tensor of the same name in `from`.
void copy_tensors(const torch::OrderedDict<std::string, torch::Tensor>& from,
                  torch::OrderedDict<std::string, torch::Tensor>& to,
                  const c10::optional<torch::Device>& device) {
  for (const auto& item : from) {
    torch::Tensor* target = to.find(item.key());
    SDEGEN_CHECK(target != nullptr, "Mlp::clone: no tensor '", item.key(), "' in the copy");
    const torch::Tensor& source = item.value();
    target->set_data(device ? source.to(*device, /*non_blocking=*/false, /*copy=*/true)
                            : source.clone());
    target->set_requires_grad(source.requires_grad());
  }
}

}  // namespace

std::vector<std::string> activation_names() { return {"tanh", "relu", "gelu", "silu", "softplus"}; }

void check_mlp_options(const MlpOptions& o) {
  SDEGEN_CHECK(o.in_dim() >= 1, "Mlp: in_dim must be >= 1, got ", o.in_dim());
  SDEGEN_CHECK(o.out_dim() >= 0, "Mlp: out_dim must be >= 0 (0 means in_dim), got ", o.out_dim());
  SDEGEN_CHECK(o.width() >= 1, "Mlp: width must be >= 1, got ", o.width());
  SDEGEN_CHECK(o.depth() >= 0, "Mlp: depth must be >= 0, got ", o.depth());
  check_name("activation", o.activation(), activation_names());
  check_name("time embedding", o.time_embedding(), time_embedding_names());
  SDEGEN_CHECK(o.embedding_dim() >= 2 && o.embedding_dim() % 2 == 0,
               "Mlp: embedding_dim must be even and >= 2, got ", o.embedding_dim());
  SDEGEN_CHECK(std::isfinite(o.max_frequency()) && o.max_frequency() >= 1.0,
               "Mlp: max_frequency must be finite and >= 1, got ", o.max_frequency());
  SDEGEN_CHECK(std::isfinite(o.fourier_scale()) && o.fourier_scale() > 0.0,
               "Mlp: fourier_scale must be finite and > 0, got ", o.fourier_scale());
  SDEGEN_CHECK(o.num_classes() >= 0, "Mlp: num_classes must be >= 0 (0 means unconditional), got ",
               o.num_classes());
  SDEGEN_CHECK(o.condition_dim() >= 0, "Mlp: condition_dim must be >= 0 (0 means none), got ", o.condition_dim());
  SDEGEN_CHECK(o.class_dim() >= 1, "Mlp: class_dim must be >= 1, got ", o.class_dim());
  SDEGEN_CHECK(std::isfinite(o.x_init_scale()) && o.x_init_scale() > 0.0,
               "Mlp: x_init_scale must be finite and > 0, got ", o.x_init_scale());
}

MlpImpl::MlpImpl(const MlpOptions& options_) : options(options_) {
  check_mlp_options(options);
  const auto names = activation_names();
  activation_ = static_cast<Activation>(
      std::find(names.begin(), names.end(), options.activation()) - names.begin());

  time_embedding = register_module(
      "time_embedding", make_time_embedding(options.time_embedding(),
                                            TimeEmbeddingOptions()
                                                .dim(options.embedding_dim())
                                                .max_frequency(options.max_frequency())
                                                .fourier_scale(options.fourier_scale())));
  int64_t in = options.in_dim() + time_embedding->dim();
  if (options.num_classes() > 0) {
    class_embedding = register_module(
        "class_embedding", torch::nn::Embedding(options.num_classes() + 1, options.class_dim()));
    in += options.class_dim();
  }
  if (options.condition_dim() > 0) in += options.condition_dim() + 1;
  hidden = register_module("hidden", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth(); ++i) {
    torch::nn::Linear layer(in, options.width());
    hidden->push_back(layer);
    layers_.push_back(layer);
    in = options.width();
  }
  output = register_module("output", torch::nn::Linear(in, options.resolved_out_dim()));
  if (options.x_init_scale() != 1.0) {
    // The first layer's columns for x come first in its input [x, embed(t) (, embed(label))].
    torch::NoGradGuard no_grad;
    torch::nn::Linear& first = layers_.empty() ? output : layers_.front();
    first->weight.narrow(1, 0, options.in_dim()).mul_(options.x_init_scale());
  }
  if (options.zero_init_output()) {
    torch::NoGradGuard no_grad;
    output->weight.zero_();
    output->bias.zero_();
  }
}

torch::Tensor MlpImpl::check_inputs(const torch::Tensor& x, const torch::Tensor& t,
                                    const Condition& condition) const {
  check_network_inputs("Mlp", shape(), options.num_classes(), x, t, condition, options.condition_dim());
  // No copies on the usual path: expand is a view, and .to() returns t itself when the dtype
  // already matches.
  return (t.dim() == 0 ? t.expand({x.size(0)}) : t).to(x.dtype());
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition) {
  const torch::Tensor times = check_inputs(x, t, condition);
  std::array<torch::Tensor, 4> parts{x, time_embedding->forward(times)};
  size_t n = 2;
  if (class_embedding)
    parts[n++] = class_embedding->forward(label_rows(condition, options.num_classes(), x.size(0), x.device()));
  if (options.condition_dim() > 0)
    parts[n++] = condition_features("Mlp", condition, options.condition_dim(), x.size(0), x.scalar_type(), x.device());
  torch::Tensor h = torch::cat(torch::TensorList(parts.data(), n), 1);
  for (auto& layer : layers_) h = activate(layer->forward(h));
  return output->forward(h);
}

nlohmann::json MlpImpl::config() const { return to_json(options); }

torch::Tensor MlpImpl::activate(const torch::Tensor& h) const {
  switch (activation_) {
    case Activation::Tanh: return torch::tanh(h);
    case Activation::Relu: return torch::relu(h);
    case Activation::Gelu: return torch::gelu(h);
    case Activation::Silu: return torch::silu(h);
    case Activation::Softplus: return torch::softplus(h);
  }
  throw InvalidArgument("Mlp: unknown activation");
}

torch::Tensor MlpImpl::activation_slope(const torch::Tensor& pre, const torch::Tensor& h) const {
  switch (activation_) {
    case Activation::Tanh: return 1.0 - h * h;
    case Activation::Relu: return (pre > 0).to(pre.dtype());
    case Activation::Gelu: {
      // gelu(x) = x Phi(x): slope Phi(x) + x phi(x).
      const torch::Tensor phi = torch::exp(-0.5 * pre * pre) / std::sqrt(2.0 * M_PI);
      return 0.5 * (1.0 + torch::erf(pre / std::sqrt(2.0))) + pre * phi;
    }
    case Activation::Silu: {
      const torch::Tensor s = torch::sigmoid(pre);
      return s * (1.0 + pre * (1.0 - s));
    }
    case Activation::Softplus: return torch::sigmoid(pre);
  }
  throw InvalidArgument("Mlp: unknown activation");
}

MlpImpl::Tangents MlpImpl::forward_with_tangents(const torch::Tensor& x, const torch::Tensor& t,
                                                 bool time_derivative, bool jacobian) {
  SDEGEN_CHECK(!class_embedding && options.condition_dim() == 0,
               "Mlp::forward_with_tangents supports unconditional nets only");
  const torch::Tensor times = check_inputs(x, t);
  const int64_t d = options.in_dim(), batch = x.size(0);
  const torch::Tensor z = torch::cat({x, time_embedding->forward(times)}, 1);
  // Tangent directions, stacked as [batch, k, features]: d/dt first, then d/dx_1 ... d/dx_d.
  // The first layer's tangents are columns of its weight matrix: W[:, :d] for x, and
  // W[:, d:] applied to the embedding's derivative for t.
  const torch::Tensor demb = time_derivative ? time_embedding->derivative(times) : torch::Tensor();
  auto first_tangents = [&](const torch::Tensor& weight) {
    std::vector<torch::Tensor> parts;
    if (time_derivative) parts.push_back(torch::matmul(demb, weight.slice(1, d).t()).unsqueeze(1));
    if (jacobian) parts.push_back(weight.slice(1, 0, d).t().unsqueeze(0).expand({batch, d, weight.size(0)}));
    return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
  };
  const bool tangents = time_derivative || jacobian;
  torch::Tensor h = z, tangent;
  bool first = true;
  for (auto& layer : layers_) {
    const torch::Tensor pre = layer->forward(h);
    if (tangents) tangent = first ? first_tangents(layer->weight) : torch::matmul(tangent, layer->weight.t());
    first = false;
    h = activate(pre);
    if (tangents) tangent = tangent * activation_slope(pre, h).unsqueeze(1);
  }
  Tangents result;
  result.out = output->forward(h);
  if (!tangents) return result;
  tangent = first ? first_tangents(output->weight) : torch::matmul(tangent, output->weight.t());
  int64_t k = 0;
  if (time_derivative) result.d_dt = tangent.select(1, k++);
  if (jacobian) result.jacobian = tangent.slice(1, k).transpose(1, 2);
  return result;
}

std::shared_ptr<torch::nn::Module> MlpImpl::clone(
    const c10::optional<torch::Device>& device) const {
  torch::NoGradGuard no_grad;
  auto copy = std::make_shared<MlpImpl>(options);
  auto parameters = copy->named_parameters();
  copy_tensors(named_parameters(), parameters, device);
  auto buffers = copy->named_buffers();
  copy_tensors(named_buffers(), buffers, device);
  copy->train(is_training());
  return copy;
}

void MlpImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::Mlp(in_dim=" << options.in_dim()
         << ", out_dim=" << options.resolved_out_dim() << ", width=" << options.width()
         << ", depth=" << options.depth() << ", activation=" << options.activation()
         << ", time_embedding=" << options.time_embedding();
  if (options.num_classes() > 0) stream << ", num_classes=" << options.num_classes();
  if (options.condition_dim() > 0) stream << ", condition_dim=" << options.condition_dim();
  stream << ")";
}

// ---- options <-> JSON ----

namespace {

const std::vector<std::string>& mlp_json_keys() {
  static const std::vector<std::string> keys = {
      "type",          "in_dim",        "out_dim",       "width",
      "depth",         "activation",    "time_embedding", "embedding_dim",
      "max_frequency", "fourier_scale", "num_classes",   "class_dim",
      "zero_init_output", "x_init_scale", "condition_dim"};
  return keys;
}

}  // namespace

nlohmann::json to_json(const MlpOptions& o) {
  nlohmann::json j = {{"type", "mlp"},
                      {"in_dim", o.in_dim()},
                      {"out_dim", o.out_dim()},
                      {"width", o.width()},
                      {"depth", o.depth()},
                      {"activation", o.activation()},
                      {"time_embedding", o.time_embedding()},
                      {"embedding_dim", o.embedding_dim()},
                      {"max_frequency", o.max_frequency()},
                      {"fourier_scale", o.fourier_scale()},
                      {"num_classes", o.num_classes()},
                      {"class_dim", o.class_dim()},
                      {"zero_init_output", o.zero_init_output()}};
  // Written only when it is not 1, so the config of a net at the default initialisation is what
  // it was before the option existed (checkpoints compare their stored config exactly).
  if (o.x_init_scale() != 1.0) j["x_init_scale"] = o.x_init_scale();
  if (o.condition_dim() > 0) j["condition_dim"] = o.condition_dim();  // likewise
  return j;
}

MlpOptions mlp_options_from_json(const nlohmann::json& j) {
  const JsonFields f(j, "Mlp", mlp_json_keys());
  f.expect_type("mlp");
  MlpOptions o = MlpOptions(f.integer("in_dim"))
                     .out_dim(f.integer("out_dim"))
                     .width(f.integer("width"))
                     .depth(f.integer("depth"))
                     .activation(f.text("activation"))
                     .time_embedding(f.text("time_embedding"))
                     .embedding_dim(f.integer("embedding_dim"))
                     .max_frequency(f.number("max_frequency"))
                     .fourier_scale(f.number("fourier_scale"))
                     .num_classes(f.integer("num_classes"))
                     .class_dim(f.integer("class_dim"))
                     .zero_init_output(f.flag("zero_init_output"));
  // Optional: configs written before it existed were initialised at scale 1.
  if (f.has("x_init_scale")) o.x_init_scale(f.number("x_init_scale"));
  if (f.has("condition_dim")) o.condition_dim(f.integer("condition_dim"));
  check_mlp_options(o);
  return o;
}

}  // namespace sdegen
