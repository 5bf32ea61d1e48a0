// The c10d side of data-parallel training (train/distributed.h). Compiled with USE_C10D_GLOO
// (and SDEGEN_HAVE_GLOO) when CMake finds libgloo-dev's headers, without the shared precompiled
// header (whose definitions differ).
#include "sdegen/train/distributed.h"

#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"

#ifdef SDEGEN_HAVE_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#endif

namespace sdegen {
namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

int64_t env_integer(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const std::optional<std::string> v = env(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || value < lo || value > hi)
    throw InvalidArgument(fmt::format("the environment variable {}='{}' must be an integer in [{}, {}]", name, *v, lo,
                                      hi));
  return value;
}

#ifdef SDEGEN_HAVE_GLOO
std::string reason(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::ProcessGroupGloo> group,
                   int64_t rank, int64_t size, std::chrono::milliseconds timeout)
      : store_(std::move(store)), group_(std::move(group)), rank_(rank), size_(size), timeout_(timeout) {}

  int64_t rank() const override { return rank_; }
  int64_t size() const override { return size_; }

  void all_reduce_sum(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::SUM, "summing over the ranks"); }
  void all_reduce_max(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::MAX, "taking a maximum over the ranks"); }

  void broadcast(torch::Tensor& t, int64_t root) override {
    std::vector<torch::Tensor> ts = {t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    run("broadcasting rank " + std::to_string(root) + "'s values", [&] { group_->broadcast(ts, o)->wait(); });
  }

  void barrier() override {
    c10d::BarrierOptions o;
    o.timeout = timeout_;
    // Gloo's monitored barrier names the ranks that did not arrive.
    run("waiting for every rank", [&] { group_->monitoredBarrier(o, /*waitAllRanks=*/true); });
  }

 private:
  void reduce(torch::Tensor& t, c10d::ReduceOp op, const char* what) {
    std::vector<torch::Tensor> ts = {t};
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    run(what, [&] { group_->allreduce(ts, o)->wait(); });
  }

  template <class F>
  void run(const std::string& what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      throw DistributedError(fmt::format(
          "rank {} of {}: lost contact with the other processes while {} (one of them stopped, or the network failed; "
          "the launcher names the one that stopped): {}",
          rank_, size_, what, reason(e)));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  int64_t rank_, size_;
  std::chrono::milliseconds timeout_;
};

// Every rank announces itself in the store and waits for the others until `timeout`; then the
// ranks that have not arrived are named.
void arrive(c10d::Store& store, const DistributedEnv& e, const std::string& where, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    store.set("arrived/" + std::to_string(e.rank), std::vector<uint8_t>{1});
    store.add("arrivals", 1);
    while (store.add("arrivals", 0) < e.world_size) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::vector<std::string> missing;
        for (int64_t r = 0; r < e.world_size; ++r)
          if (!store.check({"arrived/" + std::to_string(r)})) missing.push_back(std::to_string(r));
        std::string list;
        for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
        throw DistributedError(fmt::format("rank {} of {}: the rendezvous on {} timed out after {} s: {} of {} "
                                           "processes arrived; missing rank(s) {}",
                                           e.rank, e.world_size, where, timeout.count() / 1000.0,
                                           e.world_size - static_cast<int64_t>(missing.size()), e.world_size, list));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& ex) {
    throw DistributedError(fmt::format("rank {} of {}: the rendezvous on {} failed (rank 0's store went away?): {}",
                                       e.rank, e.world_size, where, reason(ex)));
  }
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}
#endif

}  // namespace

std::optional<DistributedEnv> distributed_environment() {
  if (!env("WORLD_SIZE")) return std::nullopt;
  DistributedEnv e;
  e.world_size = env_integer("WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = env_integer("RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_integer("LOCAL_RANK", e.rank, 0, e.world_size - 1);
  e.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
  SDEGEN_CHECK(!e.master_addr.empty(), "the environment variable MASTER_ADDR is empty");
  e.master_port = env_integer("MASTER_PORT", 29500, 1, 65535);
  return e;
}

bool distributed_available() {
#ifdef SDEGEN_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

CommunicatorPtr connect(const DistributedEnv& e, std::chrono::milliseconds timeout) {
  SDEGEN_CHECK(e.world_size >= 1 && e.rank >= 0 && e.rank < e.world_size, "rank ", e.rank, " outside a world of ",
               e.world_size);
#ifdef SDEGEN_HAVE_GLOO
  const std::string where = fmt::format("{}:{}", e.master_addr, e.master_port);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(e.master_port);
    // torchrun's agent may serve the store itself (and says so); then every rank is a client.
    o.isServer = e.rank == 0 && env("TORCHELASTIC_USE_AGENT_STORE").value_or("") != "True";
    o.numWorkers = static_cast<std::size_t>(e.world_size);
    o.waitWorkers = false;  // arrive() below waits, and names the ranks missing
    o.timeout = timeout;
    c10::intrusive_ptr<c10d::TCPStore> tcp;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
    // PyTorch 2.4 serves the store on libuv by default; a LibTorch built without it (Debian 13's
    // 2.6) refuses that, and its older socket server works the same for a rendezvous.
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
    } catch (const std::exception& ex) {
      if (std::string(ex.what()).find("without libuv") == std::string::npos) throw;
      o.useLibUV = false;
      tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
    }
#else
    tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
#endif
    // Keys of their own, per restart of an elastic launcher that keeps its store.
    store = c10::make_intrusive<c10d::PrefixStore>(
        "sdegen/" + env("TORCHELASTIC_RESTART_COUNT").value_or("0") + "/", tcp);
  } catch (const std::exception& ex) {
    const std::string r = reason(ex);
    if (r.find("Address already in use") != std::string::npos)
      throw DistributedError(fmt::format("rank 0 cannot serve the rendezvous on {}: the port is in use (set "
                                         "MASTER_PORT to a free one): {}",
                                         where, r));
    throw DistributedError(fmt::format("rank {} of {}: the rendezvous on {} failed within {} s (not every rank "
                                       "arrived, or rank 0's store is unreachable): {}",
                                       e.rank, e.world_size, where, timeout.count() / 1000.0, r));
  }
  arrive(*store, e, where, timeout);
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const std::optional<std::string> ifname = env("GLOO_SOCKET_IFNAME"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname));
    else if (is_loopback(e.master_addr))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(e.rank),
                                                             static_cast<int>(e.world_size), options);
    return std::make_shared<GlooCommunicator>(store, group, e.rank, e.world_size, timeout);
  } catch (const std::exception& ex) {
    throw DistributedError(fmt::format("rank {} of {}: connecting the Gloo process group through {} failed: {}",
                                       e.rank, e.world_size, where, reason(ex)));
  }
#else
  (void)timeout;
  throw DistributedError(
      "this sdegen was built without c10d's Gloo process group: install libgloo-dev (scripts/setup.sh does) and "
      "rebuild, so that CMake finds its headers");
#endif
}

namespace {

// Consecutive runs of one dtype, at most bucket_bytes each (a larger tensor is a bucket alone).
std::vector<std::vector<torch::Tensor>> buckets(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  std::vector<std::vector<torch::Tensor>> out;
  int64_t bytes = 0;
  for (const torch::Tensor& t : tensors) {
    SDEGEN_CHECK(t.defined() && t.is_contiguous(), "data-parallel collectives need defined, contiguous tensors");
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    if (out.empty() || out.back().front().scalar_type() != t.scalar_type() || bytes + b > bucket_bytes) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(t);
    bytes += b;
  }
  return out;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> flat;
  for (const torch::Tensor& t : ts) flat.push_back(t.reshape({-1}));
  return torch::cat(flat);
}

void unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& ts) {
  int64_t at = 0;
  for (const torch::Tensor& t : ts) {
    const int64_t n = t.numel();
    torch::NoGradGuard no_grad;
    t.view({-1}).copy_(flat.narrow(0, at, n));
    at += n;
  }
}

}  // namespace

void all_reduce_sum(Communicator& comm, const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  for (const auto& bucket : buckets(tensors, bucket_bytes)) {
    torch::Tensor flat = flatten(bucket);
    comm.all_reduce_sum(flat);
    unflatten(flat, bucket);
  }
}

void broadcast_from_rank0(Communicator& comm, const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> detached;
  for (const torch::Tensor& t : tensors) detached.push_back(t.detach());
  for (const auto& bucket : buckets(detached, std::numeric_limits<int64_t>::max())) {
    torch::Tensor flat = flatten(bucket);
    comm.broadcast(flat, 0);
    unflatten(flat, bucket);
  }
}

void check_replicas_agree(Communicator& comm, const std::vector<torch::Tensor>& tensors, const std::string& what) {
  double sum = 0, squares = 0;
  for (const torch::Tensor& t : tensors) {
    const torch::Tensor d = t.detach().to(torch::kDouble);
    sum += d.sum().item<double>();
    squares += d.square().sum().item<double>();
  }
  torch::Tensor v = torch::tensor({sum, squares, -sum, -squares}, torch::kDouble);
  comm.all_reduce_max(v);
  const double* m = v.data_ptr<double>();
  // Ranks on identical CPUs agree to the bit; other vector units (FMA or not) may round the same
  // update differently, so agreement is judged relative to the sum of squares.
  const double tolerance = 1e-9 * (1.0 + std::fabs(m[1]));
  if (m[0] + m[2] > tolerance || m[1] + m[3] > tolerance)
    throw DistributedError(fmt::format("rank {} of {}: the ranks' {} differ (sums from {} to {}); the processes no "
                                       "longer train one model",
                                       comm.rank(), comm.size(), what, -m[2], m[0]));
}

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw DistributedError(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  close(fd);
  if (!ok) throw DistributedError(std::string("cannot find a free port on the loopback: ") + std::strerror(err));
  return ntohs(addr.sin_port);
}

std::pair<int64_t, int64_t> shard_range(int64_t batch, int64_t rank, int64_t world) {
  SDEGEN_CHECK(world >= 1 && rank >= 0 && rank < world && batch >= world, "shard_range: a batch of ", batch,
               " rows cannot give rank ", rank, " of ", world, " any");
  return {batch * rank / world, batch * (rank + 1) / world};
}

}  // namespace sdegen
