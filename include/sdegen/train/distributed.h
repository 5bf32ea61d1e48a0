#pragma once
// Data-parallel training across processes, on PyTorch's own c10d: a TCPStore for the rendezvous
// and a Gloo process group for the collectives (LibTorch built with Gloo, as Debian's and
// PyTorch's are; sdegen compiles this part with USE_C10D_GLOO when libgloo-dev's headers are
// there). Processes find each other through torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT), so `sdegen train --nproc N` and any external launcher (torchrun, a
// cluster scheduler) start the same binary the same way. Rank 0 serves the store, unless
// torchrun's agent serves it (TORCHELASTIC_USE_AGENT_STORE=True).
//
// How train() (train/trainer.h) uses it: every rank draws the same global batch of --batch rows
// and keeps its contiguous share (core/shard.h draws the noise of the whole batch, so the union
// of the shards is what one process would draw); the gradients and the loss, each weighted by its
// share of the rows, are summed in flat buckets (Gloo has no average); rank 0's initial weights
// are broadcast; the optimiser, the average and the schedule then see the same numbers on every
// rank. Rank 0 alone writes.
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sdegen {

// The collectives a data-parallel run needs. Every call is collective: all ranks make it, in the
// same order, with tensors of the same shapes and dtype. A rank that stops or never arrives
// makes the others' call throw DistributedError (within the timeout the communicator was made
// with), naming this rank.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t size() const = 0;
  // Sums t (a contiguous CPU tensor) over the ranks, in place; every rank gets the same values.
  virtual void all_reduce_sum(torch::Tensor& t) = 0;
  // The largest value of each element over the ranks, in place.
  virtual void all_reduce_max(torch::Tensor& t) = 0;
  // Rank root's t on every rank, in place.
  virtual void broadcast(torch::Tensor& t, int64_t root = 0) = 0;
  // Returns once every rank has called it; throws naming the ranks that did not within the
  // timeout.
  virtual void barrier() = 0;
};
using CommunicatorPtr = std::shared_ptr<Communicator>;

// torchrun's variables.
struct DistributedEnv {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
};

// The variables of this process's environment, when WORLD_SIZE is set; refuses malformed or
// inconsistent ones (a rank outside [0, WORLD_SIZE), a port outside 1..65535) naming the variable.
std::optional<DistributedEnv> distributed_environment();

// Whether this build has the Gloo process group (else connect() refuses, saying how to get it).
bool distributed_available();

// Joins the run described by env: rank 0 serves the TCPStore on master_addr:master_port (a port
// in use is a DistributedError naming it), the others connect to it; ranks that have not all
// arrived within `timeout` are a DistributedError naming how many did. The communicator's
// collectives time out after `timeout` too.
CommunicatorPtr connect(const DistributedEnv& env, std::chrono::milliseconds timeout);

// Sums the tensors over the ranks through flat buffers of at most bucket_bytes (consecutive
// tensors of one dtype share a buffer), in place. The tensors must be defined, contiguous and on
// the CPU.
void all_reduce_sum(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                    int64_t bucket_bytes = 32 << 20);

// Rank 0's values of the tensors (weights, buffers; defined and contiguous) on every rank, in
// place, through one flat buffer per run of consecutive tensors of one dtype.
void broadcast_from_rank0(Communicator& comm, const std::vector<torch::Tensor>& tensors);

// Throws DistributedError when the tensors differ between ranks (a sum and a sum of squares in
// double, compared by their maximum and minimum over the ranks, beyond 1e-9 of the sum of
// squares, which leaves room for CPUs that round differently): the check that the ranks still
// hold one model.
void check_replicas_agree(Communicator& comm, const std::vector<torch::Tensor>& tensors, const std::string& what);

// A port of the loopback that nothing listens on now (the kernel's choice for port 0): where a
// launcher picks MASTER_PORT. Another process may take it before it is used.
int free_loopback_port();

// The rows [lo, hi) of a global batch of `batch` rows that rank `rank` of `world` trains on.
std::pair<int64_t, int64_t> shard_range(int64_t batch, int64_t rank, int64_t world);

}  // namespace sdegen
