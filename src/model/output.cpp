#include "sdegen/model/output.h"

#include "sdegen/core/check.h"

namespace sdegen {

std::vector<std::string> net_output_names() {
  return {"data", "noise", "score", "velocity", "v", "drift"};
}

NetOutput net_output_from_name(const std::string& name) {
  check_name("network output", name, net_output_names());
  const auto names = net_output_names();
  const auto index = std::find(names.begin(), names.end(), name) - names.begin();
  return static_cast<NetOutput>(index);
}

std::string net_output_name(NetOutput output) {
  return net_output_names().at(static_cast<size_t>(output));
}

std::optional<Prediction> as_prediction(NetOutput output) {
  switch (output) {
    case NetOutput::Data: return Prediction::Data;
    case NetOutput::Noise: return Prediction::Noise;
    case NetOutput::Score: return Prediction::Score;
    case NetOutput::Velocity: return Prediction::Velocity;
    case NetOutput::V: return Prediction::V;
    case NetOutput::Drift: return std::nullopt;
  }
  return std::nullopt;
}

NetOutput net_output_of(Prediction p) {
  switch (p) {
    case Prediction::Data: return NetOutput::Data;
    case Prediction::Noise: return NetOutput::Noise;
    case Prediction::Score: return NetOutput::Score;
    case Prediction::Velocity: return NetOutput::Velocity;
    case Prediction::V: return NetOutput::V;
  }
  throw InvalidArgument("net_output_of: unknown prediction");
}

}  // namespace sdegen
