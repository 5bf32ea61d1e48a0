// libFuzzer target: a checkpoint's config.json as loading reads it (format, version, every key's
// type, the training options, the file digests, the best-weights record). Refusals must be
// sdegen::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sdegen/core/error.h"
#include "sdegen/train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    sdegen::parse_checkpoint_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
  } catch (const sdegen::Error&) {
  }
  return 0;
}
