#pragma once
// What a network outputs. A network declares which prediction it outputs: data, noise, score,
// velocity, v (the five interchangeable predictions of param/prediction.h), or a raw drift that
// is used as it is and has no prediction to convert to.
#include <optional>
#include <string>
#include <vector>

#include "sdegen/param/prediction.h"

namespace sdegen {

enum class NetOutput { Data, Noise, Score, Velocity, V, Drift };

std::vector<std::string> net_output_names();  // "data", "noise", "score", "velocity", "v", "drift"
// An unknown name throws InvalidArgument listing the valid ones.
NetOutput net_output_from_name(const std::string& name);
std::string net_output_name(NetOutput output);

// The prediction a network's output is, or nullopt for a raw drift.
std::optional<Prediction> as_prediction(NetOutput output);
// The output of a network that predicts p.
NetOutput net_output_of(Prediction p);

}  // namespace sdegen
