#pragma once
// Bounds on the resources a user can ask for, so that a typo is refused with the bound instead
// of starting a hundred thousand threads.

namespace sdegen {

// The most threads a run may use: 4 per CPU of this machine (std::thread::hardware_concurrency,
// taken as 1 when unknown). Beyond the CPU count threads only contend; the slack allows for
// oversubscribing on purpose.
int max_threads();

}  // namespace sdegen
