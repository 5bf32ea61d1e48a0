#include "sdegen/core/check.h"

#include <algorithm>

namespace sdegen {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

void check_name(const std::string& what, const std::string& name,
                const std::vector<std::string>& valid) {
  if (std::find(valid.begin(), valid.end(), name) == valid.end())
    throw InvalidArgument("unknown " + what + " '" + name + "'; valid: " + join(valid));
}

}  // namespace sdegen
