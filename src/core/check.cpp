#include "sdegen/core/check.h"

#include <algorithm>
#include <sstream>

namespace sdegen {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string trim(const std::string& s) {
  const char* space = " \t\r\n";
  const auto first = s.find_first_not_of(space), last = s.find_last_not_of(space);
  return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
}

std::vector<std::string> split_trimmed(const std::string& text, char sep) {
  std::vector<std::string> pieces;
  std::string piece;
  std::istringstream in(text);
  while (std::getline(in, piece, sep)) pieces.push_back(trim(piece));
  return pieces;
}

void check_name(const std::string& what, const std::string& name,
                const std::vector<std::string>& valid) {
  if (std::find(valid.begin(), valid.end(), name) == valid.end())
    throw InvalidArgument("unknown " + what + " '" + name + "'; valid: " + join(valid));
}

}  // namespace sdegen
