#include "sdegen/net/network.h"

#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/net/dit.h"
#include "sdegen/net/mlp.h"
#include "sdegen/net/unet.h"

namespace sdegen {

namespace {

std::string dims(c10::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// A condition's vector [batch, condition_dim] floating point and its presence [batch], when given.
void check_condition_shapes(const std::string& who, const Condition& condition, int64_t condition_dim, int64_t batch) {
  SDEGEN_CHECK(condition.vector.defined() || !condition.present.defined(), who,
               ": a condition's presence was given without its vector");
  if (!condition.vector.defined()) return;
  const torch::Tensor& v = condition.vector;
  SDEGEN_CHECK(v.dim() == 2 && v.size(0) == batch && v.size(1) == condition_dim, who,
               " expects a condition vector of shape [batch, condition_dim] = [", batch, ", ", condition_dim,
               "], got ", dims(v.sizes()));
  SDEGEN_CHECK(v.is_floating_point(), who, " expects a floating-point condition vector, got ", v.scalar_type());
  SDEGEN_CHECK(!condition.present.defined() || (condition.present.dim() == 1 && condition.present.size(0) == batch),
               who, " expects the condition's presence of shape [batch] = [", batch, "], got ",
               dims(condition.present.sizes()));
}

}  // namespace

std::vector<std::string> network_names() { return {"mlp", "unet", "dit"}; }

NetworkPtr make_network(const nlohmann::json& config) {
  SDEGEN_CHECK(config.is_object(), "network configuration must be a JSON object, got ", config.dump());
  const auto type = config.find("type");
  SDEGEN_CHECK(type != config.end() && type->is_string(), "network configuration needs a \"type\" string, one of ",
               join(network_names()), "; got ", config.dump());
  const std::string name = type->get<std::string>();
  check_name("network type", name, network_names());
  if (name == "unet") return UNet(unet_options_from_json(config)).ptr();
  if (name == "dit") return DiT(dit_options_from_json(config)).ptr();
  return Mlp(mlp_options_from_json(config)).ptr();
}

int64_t example_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t s : shape) n *= s;
  return n;
}

void check_network_inputs(const std::string& who, const std::vector<int64_t>& shape, int64_t num_classes,
                          const torch::Tensor& x, const torch::Tensor& t, const Condition& condition,
                          int64_t condition_dim) {
  SDEGEN_CHECK(x.defined() && x.dim() == static_cast<int64_t>(shape.size()) + 1 &&
                   x.sizes().slice(1) == c10::IntArrayRef(shape),
               who, " expects x of shape [batch, ", join([&] {
                 std::vector<std::string> s;
                 for (const int64_t v : shape) s.push_back(std::to_string(v));
                 return s;
               }()),
               "], got ", x.defined() ? dims(x.sizes()) : std::string("an undefined tensor"));
  SDEGEN_CHECK(x.is_floating_point(), who, " expects floating-point x, got ", x.scalar_type());
  const int64_t batch = x.size(0);
  SDEGEN_CHECK(t.defined() && (t.dim() == 0 || (t.dim() == 1 && t.size(0) == batch)), who,
               " expects t of shape [batch] = [", batch, "] or a scalar, got ",
               t.defined() ? dims(t.sizes()) : std::string("an undefined tensor"));
  SDEGEN_CHECK(t.is_floating_point(), who, " expects floating-point t, got ", t.scalar_type());
  if (condition.vector.defined() || condition.present.defined()) {
    SDEGEN_CHECK(condition_dim > 0, who, " takes no condition vector (condition_dim = 0) but was given one of shape ",
                 condition.vector.defined() ? dims(condition.vector.sizes()) : std::string("(none)"));
    check_condition_shapes(who, condition, condition_dim, batch);  // its values: condition_features
  }
  if (!condition.labels.defined()) return;
  const torch::Tensor& labels = condition.labels;
  SDEGEN_CHECK(num_classes > 0, who, " is unconditional (num_classes = 0) but was given labels of shape ",
               dims(labels.sizes()));
  SDEGEN_CHECK(labels.dim() == 1 && labels.size(0) == batch, who, " expects labels of shape [batch] = [", batch,
               "], got ", dims(labels.sizes()));
  SDEGEN_CHECK(c10::isIntegralType(labels.scalar_type(), /*includeBool=*/false), who,
               " expects integer labels (int64), got ", labels.scalar_type());
  if (batch == 0) return;
  const bool in_range = (labels.ge(0) | labels.eq(kNullLabel)).all().item<bool>() &&
                        labels.max().item<int64_t>() < num_classes;
  if (!in_range) {
    const auto [lo, hi] = torch::aminmax(labels);
    throw InvalidArgument(detail::concat(who, " expects labels in [0, ", num_classes, ") or ", kNullLabel,
                                         " (no label), got values in [", lo.item<int64_t>(), ", ",
                                         hi.item<int64_t>(), "]"));
  }
}

Condition Condition::slice(int64_t start, int64_t length) const {
  Condition c;
  auto part = [&](const torch::Tensor& v) { return v.defined() ? v.narrow(0, start, length) : v; };
  c.labels = part(labels), c.vector = part(vector), c.present = part(present), c.source = part(source);
  c.vector_finite = vector_finite;
  return c;
}

Condition Condition::select(const torch::Tensor& rows) const {
  Condition c;
  auto part = [&](const torch::Tensor& v) { return v.defined() ? v.index_select(0, rows.to(v.device())) : v; };
  c.labels = part(labels), c.vector = part(vector), c.present = part(present), c.source = part(source);
  c.vector_finite = vector_finite;
  return c;
}

namespace {

// The presence of each row of a condition's vector: `present`, or ones.
torch::Tensor presence(const Condition& c) {
  return c.present.defined() ? c.present : torch::ones({c.vector.size(0)}, c.vector.options());
}

}  // namespace

Condition checked_finite(const std::string& who, Condition condition) {
  SDEGEN_CHECK(!condition.vector.defined() || condition.vector.numel() == 0 ||
                   torch::isfinite(condition.vector).all().item<bool>(),
               who, " was given a condition vector with a NaN or infinite value");
  condition.vector_finite = true;
  return condition;
}

Condition with_null_rows(const Condition& condition) {
  Condition c;
  c.vector_finite = condition.vector_finite;  // the null rows are zeros
  if (condition.labels.defined())
    c.labels = torch::cat({condition.labels, torch::full_like(condition.labels, kNullLabel)});
  if (condition.vector.defined()) {
    const torch::Tensor p = presence(condition);
    c.vector = torch::cat({condition.vector, torch::zeros_like(condition.vector)});
    c.present = torch::cat({p, torch::zeros_like(p)});
  }
  return c;
}

Condition drop_rows(const Condition& condition, const torch::Tensor& drop) {
  Condition c = condition;
  if (c.labels.defined())
    c.labels = torch::where(drop.to(c.labels.device()), torch::full_like(c.labels, kNullLabel), c.labels);
  if (c.vector.defined()) {
    const torch::Tensor p = presence(condition);
    c.present = torch::where(drop.to(p.device()), torch::zeros_like(p), p);
  }
  return c;
}

torch::Tensor condition_features(const std::string& who, const Condition& condition, int64_t condition_dim,
                                 int64_t batch, torch::ScalarType dtype, const torch::Device& device) {
  const auto options = torch::TensorOptions(dtype).device(device);
  if (!condition.vector.defined()) {
    check_condition_shapes(who, condition, condition_dim, batch);
    return torch::zeros({batch, condition_dim + 1}, options);
  }
  check_condition_shapes(who, condition, condition_dim, batch);
  const torch::Tensor p = presence(condition).to(options).unsqueeze(1);
  const torch::Tensor values = condition.vector.to(options);
  // Checked here rather than left to poison the output (a NaN observation is bad input), unless
  // the rows were checked where they came in.
  if (!condition.vector_finite) checked_finite(who, condition);
  return torch::cat({values * p, p}, 1);
}

torch::Tensor label_rows(const Condition& condition, int64_t num_classes, int64_t batch, const torch::Device& device) {
  const auto long_options = torch::TensorOptions(torch::kLong).device(device);
  if (!condition.labels.defined()) return torch::full({batch}, num_classes, long_options);
  const torch::Tensor labels = condition.labels.to(long_options);
  return torch::where(labels.eq(kNullLabel), torch::full_like(labels, num_classes), labels);
}

}  // namespace sdegen
