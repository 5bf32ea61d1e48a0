#include "sdegen/core/limits.h"

#include <algorithm>
#include <thread>

namespace sdegen {

int max_threads() { return 4 * std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace sdegen
