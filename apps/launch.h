#pragma once
// sdegen train --nproc N: starts N workers of this same program on this machine, with torchrun's
// variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and watches them; and the
// workers' side, which joins the run those variables describe (train/distributed.h).
#include <cstdint>

#include "sdegen/train/distributed.h"

namespace sdegen::app {

// Runs this process's command line again as `nproc` workers (rank r with RANK=r) and waits for
// them. MASTER_PORT from the environment, else a free port of the loopback. When a worker fails
// (exits non-zero or is killed), the others get `grace_seconds` (train: --dist-timeout + 5) to
// stop on their own (they do at their next collective, or when it times out), then are
// terminated; the DistributedError thrown names the first worker that failed and how. Returns
// when all exit 0. The workers get SIGTERM when the launcher itself goes (SDEGEN_LAUNCHER_PID,
// PR_SET_PDEATHSIG): a scheduler that stops the launcher stops the run.
void launch_workers(int64_t nproc, double grace_seconds);

// This process's communicator when torchrun's variables describe a run of more than one
// process (null otherwise, or for WORLD_SIZE=1); `nproc` is the --nproc given (1 unless set),
// refused when it disagrees with WORLD_SIZE. A rank other than 0 stops writing to stdout.
CommunicatorPtr join_from_environment(int64_t nproc, double timeout_seconds);

}  // namespace sdegen::app
