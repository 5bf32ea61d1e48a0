// A conditional flow as a robot policy (data/control_toy.h): it learns action chunks from
// demonstrations that pass an obstacle on either side, beside an MSE regressor on the same data
// and network. Both are rolled out in closed loop through a safety layer; the program prints how
// often each reaches the goal, collides, and which way it goes, draws the paths, and then runs the
// flow in a fixed-rate control loop, sampling a chunk at batch 1 each cycle, and reports the
// latency. Usage: example_control_loop --help
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "sdegen/core/error.h"
#include "sdegen/data/control_toy.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/eval/regressor.h"
#include "sdegen/io/csv.h"
#include "sdegen/io/plot.h"
#include "sdegen/model/factory.h"
#include "sdegen/sdegen.h"
#include "sdegen/train/trainer.h"

namespace {

using namespace sdegen;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string out = "runs/control";
  int64_t episodes = 200, steps = 4000, batch = 256, width = 128, depth = 3, rollouts = 100, cycles = 5000;
  double lr = 2e-3, rate_hz = 1000.0, start_spread = ObstacleTask{}.start_spread;
  std::string solver = "euler";
  int64_t evaluations = 10;
  uint64_t seed = 0;
};

struct Tally {
  int reached = 0, collided = 0, above = 0, below = 0;  // above and below: round the obstacle, not through it
  int64_t limited = 0, commands = 0;
};

Tally tally(const std::vector<Rollout>& rs) {
  Tally t;
  for (const Rollout& r : rs) {
    t.reached += r.reached && !r.collided;
    t.collided += r.collided;
    t.above += r.side > 0 && !r.collided;
    t.below += r.side < 0 && !r.collided;
    t.limited += r.limited;
    t.commands += static_cast<int64_t>(r.x.size()) - 1;
  }
  return t;
}

// Paths over the obstacle, one panel per policy, with the demonstrations faint behind them.
void plot_paths(const std::string& png, const ObstacleTask& task, const Demonstrations& demos,
                const std::vector<std::pair<std::string, std::vector<Rollout>>>& panels) {
  const std::filesystem::path stem = std::filesystem::path(png).replace_extension();
  const std::string demo_file = stem.string() + "_demos.dat";
  {
    std::ofstream f(demo_file);
    const auto obs = demos.observations.accessor<double, 2>();
    for (int64_t i = 0; i < obs.size(0); ++i) {
      if (i > 0 && i % task.length == 0) f << "\n";
      f << obs[i][0] << " " << obs[i][1] << "\n";
    }
  }
  std::string script = gnuplot_header(png, {1200, 560});
  script += "set multiplot layout 1," + std::to_string(panels.size()) + "\n";
  script += "set xrange [-0.05:1.1]\nset yrange [-0.55:0.55]\nset size ratio -1\nunset key\n";
  script += fmt::format("set object 1 circle at {},{} size {} fc rgb '#d62728' fs transparent solid 0.35 noborder\n",
                        task.obstacle_x, task.obstacle_y, task.radius);
  for (size_t p = 0; p < panels.size(); ++p) {
    const std::string file = stem.string() + "_" + std::to_string(p) + ".dat";
    std::ofstream f(file);
    for (const Rollout& r : panels[p].second) {
      for (size_t k = 0; k < r.x.size(); ++k) f << r.x[k] << " " << r.y[k] << " " << (r.collided ? 1 : 0) << "\n";
      f << "\n\n";
    }
    const Tally t = tally(panels[p].second);
    script += fmt::format("set title '{}: {}/{} safe, {} collide; round above {}, below {}' font ',11'\n",
                          panels[p].first, t.reached, panels[p].second.size(), t.collided, t.above, t.below);
    script += fmt::format(
        "plot '{}' with lines lc rgb '#bbbbbb' lw 0.5, '{}' using 1:2:($3 > 0 ? 0xd62728 : 0x1f77b4) with lines lc "
        "rgb variable lw 1.2, '+' using ({}):({}) with points pt 7 ps 1.5 lc rgb '#2ca02c'\n",
        std::filesystem::path(demo_file).filename().string(), std::filesystem::path(file).filename().string(),
        task.goal_x, task.goal_y);
  }
  script += "unset multiplot\n";
  run_gnuplot(png, script);
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::min<double>(v.size() - 1, std::floor(q * (v.size() - 1) + 0.5)))];
}

int run(const Args& a) {
  torch::set_num_threads(1);
  std::filesystem::create_directories(a.out);
  ObstacleTask task;
  task.start_spread = a.start_spread;
  const Demonstrations demos = obstacle_demonstrations(task, a.episodes, a.seed);
  const std::string table = a.out + "/demos.csv";
  write_csv(table, torch::cat({demos.observations, demos.actions}, 1), demos.columns);
  fmt::print("{} demonstrations ({:.0f}% above the obstacle), {} rows of (px, py) -> {} actions: {}\n", a.episodes,
             100.0 * demos.sides.eq(1).to(torch::kDouble).mean().item<double>(), demos.observations.size(0),
             task.horizon, table);

  // Both policies see standardised observations and actions, as sdegen train would give them.
  const Standardizer obs_st = fit_standardizer(demos.observations), act_st = fit_standardizer(demos.actions);
  const torch::Tensor obs = obs_st.transform(demos.observations), act = act_st.transform(demos.actions);

  torch::manual_seed(a.seed);
  AffineModelOptions o = affine_model_defaults("flow", act.size(1));
  o.net = to_json(MlpOptions(act.size(1)).width(a.width).depth(a.depth).condition_dim(obs.size(1)));
  auto flow = std::make_shared<AffineModel>(o);
  TrainSetup setup;
  setup.conditions = obs;
  setup.validator = {};
  setup.overwrite = true;
  // What sdegen train --condition-columns px,py records, so the run loads through the API below.
  setup.extra = {{"data", table},
                 {"standardizer", act_st.to_json()},
                 {"columns", std::vector<std::string>(demos.columns.begin() + 2, demos.columns.end())},
                 {"condition_columns", std::vector<std::string>(demos.columns.begin(), demos.columns.begin() + 2)},
                 {"condition_standardizer", obs_st.to_json()}};
  auto started = Clock::now();
  train(flow, act, TrainOptions().steps(a.steps).batch(a.batch).lr(a.lr).decay("cosine").seed(a.seed).threads(1),
        a.out + "/flow", setup);
  flow->eval();
  const double flow_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  started = Clock::now();
  RegressorOptions ro;
  ro.width = a.width, ro.depth = a.depth, ro.steps = a.steps, ro.batch = a.batch, ro.lr = a.lr, ro.seed = a.seed;
  Mlp regressor = fit_mse_regressor(obs, act, ro);
  const double regressor_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  fmt::print("trained the conditional flow ({:.1f} s) and the MSE regressor ({:.1f} s): {} steps of batch {}, "
             "{}x{} MLP\n", flow_seconds, regressor_seconds, a.steps, a.batch, a.depth, a.width);

  // The policy as a program that embeds it would load it: the stable API (sdegen.h).
  const sdegen::Model policy = sdegen::Model::load(a.out + "/flow");
  FastSampleOptions fo;
  fo.solver = a.solver;
  fo.steps = static_cast<int>(a.solver == "heun" ? std::max<int64_t>(1, a.evaluations / 2) : a.evaluations);
  fo.seed = a.seed + 1;
  ChunkSampler sampler = policy.fast_sampler(fo);
  const int64_t d = sampler.dim();
  const ChunkPolicy flow_policy = [&](const double* observation, double* chunk) { sampler.sample(observation, chunk); };
  const ChunkPolicy regressor_policy = [&](const double* observation, double* chunk) {
    torch::NoGradGuard no_grad;
    const torch::Tensor in = obs_st.transform(torch::tensor({observation[0], observation[1]}, torch::kDouble).view({1, 2}));
    const torch::Tensor out = act_st.inverse(regressor->forward(in, torch::zeros({1}, torch::kDouble)));
    std::copy(out.data_ptr<double>(), out.data_ptr<double>() + d, chunk);
  };

  std::vector<Rollout> flow_runs, regressor_runs;
  for (int64_t i = 0; i < a.rollouts; ++i) {
    const double y0 = a.rollouts == 1 ? 0.0 : task.start_spread * (2.0 * i / (a.rollouts - 1) - 1.0);
    flow_runs.push_back(rollout(task, flow_policy, y0));
    regressor_runs.push_back(rollout(task, regressor_policy, y0));
  }
  fmt::print("\nclosed loop from {} starts (y0 evenly in [-{}, {}]), {} of each chunk's {} actions executed, then "
             "observe again:\n", a.rollouts, task.start_spread, task.start_spread, RolloutOptions{}.execute, task.horizon);
  fmt::print("| policy | reach the goal without collision | collide | round above | round below | commands limited by the safety layer |\n");
  fmt::print("| --- | --- | --- | --- | --- | --- |\n");
  for (const auto& [name, runs] : {std::pair<std::string, const std::vector<Rollout>*>{"conditional flow (" +
                                       a.solver + ", " + std::to_string(sampler.evaluations()) + " evaluations)", &flow_runs},
                                   {"MSE regressor", &regressor_runs}}) {
    const Tally t = tally(*runs);
    fmt::print("| {} | {} / {} | {} | {} | {} | {:.1f}% |\n", name, t.reached, runs->size(), t.collided, t.above,
               t.below, 100.0 * t.limited / std::max<int64_t>(1, t.commands));
  }
  const std::string png = a.out + "/control_paths.png";
  try {
    plot_paths(png, task, demos, {{"conditional flow", flow_runs}, {"MSE regressor", regressor_runs}});
    fmt::print("paths: {}\n", png);
  } catch (const Error& e) {
    fmt::print("no plot: {}\n", e.what());
  }

  // The control loop: at a fixed rate, observe, sample a chunk at batch 1, make its first command
  // safe and apply it. Latency is the policy call plus the safety layer, per cycle.
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / a.rate_hz));
  std::vector<double> latency;
  latency.reserve(static_cast<size_t>(a.cycles));
  std::vector<double> chunk(static_cast<size_t>(d));
  double px = 0.0, py = 0.0, previous[2] = {0.0, 0.0};
  int64_t missed = 0;
  const SafetyLayer safety;
  auto next = Clock::now() + period;
  for (int64_t c = 0; c < a.cycles; ++c) {
    const auto t0 = Clock::now();
    const double observation[2] = {px, py};
    flow_policy(observation, chunk.data());
    double command[2] = {chunk[0], chunk[1]};
    safety.apply(command, previous);
    const auto t1 = Clock::now();
    latency.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    previous[0] = command[0], previous[1] = command[1];
    px += command[0], py += command[1];
    if (std::hypot(px - task.goal_x, py - task.goal_y) < 0.05 || px > 1.2) px = 0.0, py = 0.0, previous[0] = previous[1] = 0.0;
    if (t1 > next) ++missed;
    std::this_thread::sleep_until(next);
    next += period;
  }
  fmt::print("\ncontrol loop at {:.0f} Hz, {} cycles, batch 1, {} with {} steps ({} evaluations of the {}x{} MLP), "
             "one thread:\n", a.rate_hz, a.cycles, a.solver, fo.steps, sampler.evaluations(), a.depth, a.width);
  fmt::print("  latency p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us; {} cycles over their period\n",
             percentile(latency, 0.5), percentile(latency, 0.99), *std::max_element(latency.begin(), latency.end()),
             missed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"A conditional flow as a robot policy on the obstacle task, against an MSE regressor, and its "
               "latency in a fixed-rate control loop"};
  app.option_defaults()->always_capture_default();
  app.add_option("--out", a.out, "Directory for the demonstrations, the flow's run and the plot");
  app.add_option("--episodes", a.episodes, "Demonstrations");
  app.add_option("--steps", a.steps, "Training steps of each policy");
  app.add_option("--batch", a.batch, "Mini-batch");
  app.add_option("--lr", a.lr, "Peak learning rate (cosine decay)");
  app.add_option("--width", a.width, "MLP width");
  app.add_option("--depth", a.depth, "MLP hidden layers");
  app.add_option("--rollouts", a.rollouts, "Closed-loop rollouts of each policy");
  app.add_option("--solver", a.solver, "euler or heun")->check(CLI::IsMember({"euler", "heun"}));
  app.add_option("--evaluations", a.evaluations, "Network evaluations per chunk");
  app.add_option("--cycles", a.cycles, "Cycles of the timed control loop");
  app.add_option("--rate", a.rate_hz, "Control rate in Hz");
  app.add_option("--seed", a.seed, "Seed");
  app.add_option("--start-spread", a.start_spread,
                 "Starts of demonstrations and rollouts: (0, y0), y0 uniform in [-spread, spread] (rollouts: evenly)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
