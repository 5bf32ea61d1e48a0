// Data-parallel training on one machine: 1 process x T threads against T processes x 1 thread
// (train/distributed.h, Gloo over the loopback), each configuration running sdegen's own
// train() on the same model, data and global batch, side by side in alternating rounds. Reports
// the median step time of each, their ratio, and the all-reduce time per step (the gradients in
// flat buckets, as train() sends them) measured in the workers: in training (TrainResult::
// allreduce_seconds) and back to back on its own.
//   --workload mlp:  flow with its fused step, the recipe's MLP on 8-D rows, --batch (1024)
//   --workload unet: the image recipe's U-Net (base 16, 1x28x28, 10 classes, float32), --batch (64)
//   bench_data_parallel --workload mlp|unet [--procs 2] [--steps N] [--warmup W] [--rounds R] [--batch B]
// The program starts itself as the workers (RANK, WORLD_SIZE, MASTER_PORT in their environment).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "common.h"
#include "sdegen/model/factory.h"
#include "sdegen/net/unet.h"
#include "sdegen/train/distributed.h"
#include "sdegen/train/trainer.h"

extern char** environ;

namespace {

struct Workload {
  sdegen::ModelPtr model;
  torch::Tensor x, labels;
};

Workload make_workload(const std::string& name) {
  torch::manual_seed(0);
  Workload w;
  if (name == "mlp") {
    w.model = sdegen::make_model(sdegen::model_config("flow", 8));
    w.x = torch::randn({20000, 8}, torch::kDouble);
  } else {
    const sdegen::UNetOptions unet = sdegen::UNetOptions(1, 28, 28)
                                         .channel_mult({1, 2, 2})
                                         .attention_resolutions({7})
                                         .num_classes(10)
                                         .base_channels(16);
    w.model = sdegen::make_model(sdegen::model_config("flow", 1, {{"net", sdegen::to_json(unet)}, {"p_uncond", 0.1}}));
    w.x = torch::randint(0, 256, {2000, 1, 28, 28}, torch::kFloat).div_(127.5).sub_(1.0);
    w.labels = torch::randint(0, 10, {2000}, torch::kLong);
  }
  return w;
}

struct Timing {
  double step_ms = 0, allreduce_ms = 0, back_to_back_ms = 0, compute_ms = 0;
  int64_t bytes = 0;
};

// Trains warmup + steps steps and returns the median time of the timed steps (and, with a group,
// the median time of an all-reduce of the gradients' buffers).
Timing run(const std::string& name, int64_t threads, int64_t batch, int64_t warmup, int64_t steps,
           const sdegen::CommunicatorPtr& group, const std::string& out) {
  Workload w = make_workload(name);
  sdegen::TrainOptions o;
  // One step more than timed: the last one also writes the final checkpoint.
  o.batch(batch).steps(warmup + steps + 1).threads(threads).seed(1).log_every(1000000).checkpoint_every(warmup + steps + 1);
  sdegen::TrainSetup setup;
  setup.labels = w.labels;
  setup.overwrite = true;
  setup.group = group;
  std::vector<double> times;
  auto last = bench::Clock::now();
  setup.progress = [&](const sdegen::StepReport& r) {
    const auto now = bench::Clock::now();
    if (r.step > warmup && r.step <= warmup + steps) times.push_back(std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  };
  const sdegen::TrainResult result = sdegen::train(w.model, w.x, o, out, setup);
  Timing t;
  t.step_ms = bench::median(times);
  t.allreduce_ms = 1e3 * result.allreduce_seconds / static_cast<double>(warmup + steps + 1);
  // The mean timed step less the mean all-reduce (warm-up steps included in that mean).
  double sum = 0;
  for (const double ms : times) sum += ms;
  t.compute_ms = sum / static_cast<double>(std::max<size_t>(1, times.size())) - t.allreduce_ms;
  if (group) {
    std::vector<torch::Tensor> grads;
    for (const torch::Tensor& p : w.model->parameters()) {
      grads.push_back(torch::zeros_like(p));
      t.bytes += p.numel() * static_cast<int64_t>(p.element_size());
    }
    grads.push_back(torch::zeros({1}, torch::kDouble));
    std::vector<double> reduce;
    for (int i = 0; i < 30; ++i) {
      const auto start = bench::Clock::now();
      sdegen::all_reduce_sum(*group, grads);
      reduce.push_back(bench::ms_since(start));
    }
    t.back_to_back_ms = bench::median(reduce);
  }
  return t;
}

// Starts `procs` copies of this program as workers and returns rank 0's timing.
Timing run_workers(int argc, char** argv, int64_t procs, const std::string& result) {
  const std::string port = std::to_string(sdegen::free_loopback_port());
  std::vector<pid_t> pids;
  for (int64_t r = 0; r < procs; ++r) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
    env.push_back("RANK=" + std::to_string(r));
    env.push_back("WORLD_SIZE=" + std::to_string(procs));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + port);
    env.push_back("SDEGEN_BENCH_RESULT=" + result);
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()) != 0) {
      std::cerr << "bench data_parallel: cannot start a worker\n";
      std::exit(1);
    }
    pids.push_back(pid);
  }
  for (const pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "bench data_parallel: a worker failed\n";
      std::exit(1);
    }
  }
  (void)argc;
  Timing t;
  std::ifstream in(result);
  in >> t.step_ms >> t.allreduce_ms >> t.back_to_back_ms >> t.compute_ms >> t.bytes;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  const std::string name = args.str("workload", "mlp");
  if (name != "mlp" && name != "unet") {
    std::cerr << "bench data_parallel: --workload must be mlp or unet, got '" << name << "'\n";
    return 2;
  }
  const int64_t procs = args.integer("procs", 2);
  const int64_t batch = args.integer("batch", name == "mlp" ? 1024 : 64);
  const int64_t steps = args.integer("steps", name == "mlp" ? 200 : 10);
  const int64_t warmup = args.integer("warmup", name == "mlp" ? 20 : 2);
  const std::string scratch = "/tmp/sdegen_bench_dp_" + std::to_string(getpid());

  if (const std::optional<sdegen::DistributedEnv> env = sdegen::distributed_environment()) {
    // A worker: one thread, its share of the batch.
    const sdegen::CommunicatorPtr group = sdegen::connect(*env, std::chrono::seconds(60));
    const Timing t = run(name, 1, batch, warmup, steps, group, scratch + "_workers");
    if (env->rank == 0) {
      std::ofstream out(std::getenv("SDEGEN_BENCH_RESULT"));
      out.precision(17);
      out << t.step_ms << " " << t.allreduce_ms << " " << t.back_to_back_ms << " " << t.compute_ms << " " << t.bytes
          << "\n";
    }
    return 0;
  }

  std::vector<double> one, many, reduce, back_to_back, compute;
  int64_t bytes = 0;
  for (int64_t round = 0; round < args.integer("rounds", 3); ++round) {
    one.push_back(run(name, procs, batch, warmup, steps, nullptr, scratch + "_one").step_ms);
    const Timing t = run_workers(argc, argv, procs, scratch + "_result");
    many.push_back(t.step_ms);
    reduce.push_back(t.allreduce_ms);
    back_to_back.push_back(t.back_to_back_ms);
    compute.push_back(t.compute_ms);
    bytes = t.bytes;
    std::cerr << "round " << round + 1 << ": 1 x " << procs << " threads " << one.back() << " ms/step, " << procs
              << " x 1 thread " << many.back() << " ms/step (all-reduce " << t.allreduce_ms << " ms)\n";
  }
  std::filesystem::remove_all(scratch + "_one");
  std::filesystem::remove_all(scratch + "_workers");
  std::filesystem::remove(scratch + "_result");
  const double a = bench::median(one), b = bench::median(many), r = bench::median(reduce);
  std::printf("workload %s, global batch %ld, %ld timed steps, medians of %zu alternating rounds:\n", name.c_str(),
              static_cast<long>(batch), static_cast<long>(steps), one.size());
  std::printf("  1 process x %ld threads: %.3f ms/step\n", static_cast<long>(procs), a);
  std::printf("  %ld processes x 1 thread: %.3f ms/step (throughput ratio %.2fx)\n", static_cast<long>(procs), b,
              a / b);
  std::printf("  all-reduce of the gradients (%.2f MB) in training: %.3f ms per step (%.1f%% of the step; waiting for "
              "the other rank included); back to back, alone: %.3f ms\n",
              static_cast<double>(bytes) / 1e6, r, 100.0 * r / b, bench::median(back_to_back));
  // The cost model: a worker's compute grows with its rows (per-row cost from the workers above:
  // their mean timed step less their mean all-reduce); train() sums the gradients after the
  // backward pass, without overlap; a ring all-reduce moves 2 (N - 1) / N of the bytes each way
  // per worker and takes 2 (N - 1) message latencies (alpha = 25 us, a TCP round on a
  // data-centre network: an assumption, not a measurement).
  const double per_row = bench::median(compute) / (static_cast<double>(batch) / static_cast<double>(procs));
  const double alpha_ms = 0.025;
  std::printf("cost model (1-thread workers, %.4f ms per row measured here, ring all-reduce of %.2f MB, alpha %.3f "
              "ms):\n",
              per_row, static_cast<double>(bytes) / 1e6, alpha_ms);
  std::printf("  %-8s %-8s %-22s %-12s %-12s %-10s\n", "workers", "Gb/s", "batch", "compute ms", "comm ms",
              "efficiency");
  for (const int64_t n : {8, 64}) {
    for (const double gbps : {10.0, 100.0}) {
      const double comm = 2.0 * static_cast<double>(n - 1) / static_cast<double>(n) * static_cast<double>(bytes) /
                              (gbps * 1e9 / 8.0) * 1e3 +
                          2.0 * static_cast<double>(n - 1) * alpha_ms;
      for (const bool weak : {false, true}) {
        const double rows = weak ? static_cast<double>(batch) : static_cast<double>(batch) / static_cast<double>(n);
        const double compute = per_row * rows;
        const std::string what = weak ? std::to_string(batch) + " per worker" : std::to_string(batch) + " global";
        std::printf("  %-8ld %-8.0f %-22s %-12.2f %-12.2f %-10.2f\n", static_cast<long>(n), gbps, what.c_str(),
                    compute, comm, compute / (compute + comm));
      }
    }
  }
  std::printf("reproduce: build/bench_data_parallel --workload %s --procs %ld --rounds %zu\n", name.c_str(),
              static_cast<long>(procs), one.size());
  return 0;
}
