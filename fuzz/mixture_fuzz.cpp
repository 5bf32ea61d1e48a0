// libFuzzer target: the mixture JSON reader, then the mixture's density at the origin. Refusals
// must be sdegen::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sdegen/core/error.h"
#include "sdegen/data/mixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sdegen::GaussianMixture m =
        sdegen::parse_mixture_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (m.dim() <= 64) m.log_prob(torch::zeros({1, m.dim()}, torch::kDouble));
  } catch (const sdegen::Error&) {
  }
  return 0;
}
