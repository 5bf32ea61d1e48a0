#pragma once
// Argument checks that throw sdegen::InvalidArgument with a readable message.
#include <sstream>
#include <string>
#include <vector>

#include "sdegen/core/error.h"

namespace sdegen::detail {

template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace sdegen::detail

// SDEGEN_CHECK(cond, "message ", value, ...) throws InvalidArgument built from the pieces.
#define SDEGEN_CHECK(cond, ...)                                                   \
  do {                                                                            \
    if (!(cond)) throw ::sdegen::InvalidArgument(::sdegen::detail::concat(__VA_ARGS__)); \
  } while (0)

namespace sdegen {

// "a, b, c": for messages that list the valid choices.
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");
// s without leading and trailing spaces, tabs and line ends.
std::string trim(const std::string& s);
// "a, b,c" -> {"a", "b", "c"}: the pieces between separators, each trimmed (empty pieces kept, so
// that a caller can refuse them by name).
std::vector<std::string> split_trimmed(const std::string& text, char sep = ',');

// Throws InvalidArgument "unknown <what> 'name'; valid: a, b, c" unless name is in valid.
void check_name(const std::string& what, const std::string& name,
                const std::vector<std::string>& valid);

}  // namespace sdegen
