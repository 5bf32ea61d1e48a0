// sdegen train --nproc and torchrun's variables: the launcher, and what happens when a worker
// dies, a port is taken or a rank never arrives (apps/launch.h, train/distributed.h).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "apps/cli_support.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/distributed.h"

extern char** environ;

namespace sdegen::test {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A port taken: a socket listening on it (on every address, as a TCPStore binds).
struct TakenPort {
  int fd = -1, number = 0;
  TakenPort() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    EXPECT_EQ(listen(fd, 4), 0);
    number = ntohs(addr.sin_port);
  }
  ~TakenPort() { close(fd); }
};

// The pid of the child of `parent` whose environment has RANK=rank, or -1.
pid_t worker_of(pid_t parent, int rank) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_file(entry.path().string() + "/stat");
    const size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(close_paren + 2));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid != parent) continue;
    const std::string env = read_file(entry.path().string() + "/environ");
    std::istringstream vars(env);
    bool match = false;
    for (std::string v; std::getline(vars, v, '\0');) match = match || v == "RANK=" + std::to_string(rank);
    if (match)
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

const std::string kTrain = "train --data laplace5 --model flow --n-train 500 --threads 1 --log-every 1 --batch 16";

class DistributedCli : public CliTest {
 protected:
  // Starts a long 2-worker run into `out` (plus `extra` flags) and waits for its first checkpoint;
  // returns the launcher's pid, or -1 when no checkpoint came within 2 minutes.
  pid_t start_long_run(const std::string& out, const std::string& log, const std::string& extra) {
    std::vector<std::string> args;
    std::istringstream words(kTrain + " --n-val 0 --steps 1000000 --checkpoint-every 50 --nproc 2" + extra);
    for (std::string w; words >> w;) args.push_back(w);
    args.insert(args.end(), {"--out", out});
    const pid_t launcher = start(args, log);
    const auto begun = Clock::now();
    while (launcher > 0 && !has_checkpoint(out) && seconds_since(begun) < 120)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (has_checkpoint(out)) return launcher;
    if (launcher > 0) kill(launcher, SIGKILL), waitpid(launcher, nullptr, 0);  // its workers follow it
    return -1;
  }
  void SetUp() override {
    if (!distributed_available()) GTEST_SKIP() << "built without c10d's Gloo (libgloo-dev)";
    CliTest::SetUp();
  }
  // Starts `sdegen ARGS` (no shell), its output into `log`.
  pid_t start(const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> all = {std::getenv("SDEGEN_BIN")};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    pid_t pid = -1;
    posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    return pid;
  }
};


TEST_F(DistributedCli, TwoWorkersTrainAsOneProcess) {
  const Outcome one = run_sdegen(kTrain + " --n-val 100 --steps 30 --out " + path("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  const Outcome two = run_sdegen(kTrain + " --n-val 100 --steps 30 --nproc 2 --out " + path("two"));
  ASSERT_EQ(two.code, 0) << two.output;
  // Rank 0 alone reports: one summary line, one checkpoint.
  EXPECT_EQ(two.output.find("trained flow"), two.output.rfind("trained flow")) << two.output;
  const auto a = read_csv_rows(path("one/log.csv")), b = read_csv_rows(path("two/log.csv"));
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GE(a.size(), 5u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i][1], b[i][1], 1e-8 * (1 + std::fabs(a[i][1]))) << "row " << i;
}

TEST_F(DistributedCli, AKilledWorkerStopsTheOthersAndTheCheckpointResumes) {
  const std::string out = path("run"), log = path("launcher.log");
  const pid_t launcher = start_long_run(out, log, " --dist-timeout 20");
  ASSERT_GT(launcher, 0) << read_file(log);
  // With its first checkpoint written, kill rank 1.
  const pid_t victim = worker_of(launcher, 1);
  ASSERT_GT(victim, 0) << "no worker with RANK=1 under the launcher";
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed = Clock::now();
  int status = 0;
  while (waitpid(launcher, &status, WNOHANG) == 0 && seconds_since(killed) < 60)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double took = seconds_since(killed);
  if (took >= 60) kill(launcher, SIGKILL), waitpid(launcher, &status, 0);
  // The survivor stops at its next collective, well within --dist-timeout.
  EXPECT_LT(took, 20.0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string said = read_file(log);
  EXPECT_NE(said.find("worker rank 1 of 2 (pid " + std::to_string(victim) + ") was killed by signal 9"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("rank 0 of 2: lost contact with the other processes"), std::string::npos) << said;
  // The last checkpoint is intact, and one process continues it.
  const int64_t step = load_checkpoint_config(out).at("step").get<int64_t>();
  EXPECT_GE(step, 50);
  const Outcome resumed = run_sdegen(kTrain + " --n-val 0 --checkpoint-every 50 --resume --steps " +
                                     std::to_string(step + 10) + " --out " + out);
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(load_checkpoint_config(out).at("step").get<int64_t>(), step + 10);
}

TEST_F(DistributedCli, StoppingTheLauncherStopsItsWorkers) {
  const std::string out = path("run"), log = path("launcher.log");
  const pid_t launcher = start_long_run(out, log, "");
  ASSERT_GT(launcher, 0) << read_file(log);
  const pid_t rank0 = worker_of(launcher, 0), rank1 = worker_of(launcher, 1);
  ASSERT_GT(rank0, 0);
  ASSERT_GT(rank1, 0);
  // As a scheduler would: SIGKILL, which the launcher cannot catch or forward.
  ASSERT_EQ(kill(launcher, SIGKILL), 0);
  int status = 0;
  waitpid(launcher, &status, 0);
  const auto killed = Clock::now();
  // The workers were reparented; they are gone once kill(pid, 0) fails (or they are zombies of init).
  auto alive = [](pid_t pid) {
    if (kill(pid, 0) != 0) return false;
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const size_t close_paren = stat.rfind(')');
    return close_paren != std::string::npos && stat.size() > close_paren + 2 && stat[close_paren + 2] != 'Z';
  };
  while ((alive(rank0) || alive(rank1)) && seconds_since(killed) < 30)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(alive(rank0));
  EXPECT_FALSE(alive(rank1));
  EXPECT_LT(seconds_since(killed), 10.0);
  for (const pid_t pid : {rank0, rank1})  // a failed check leaves no orphan training on
    if (alive(pid)) kill(pid, SIGKILL);
  // What they left is a checkpoint that loads.
  EXPECT_GE(load_checkpoint_config(out).at("step").get<int64_t>(), 50);
}

TEST_F(DistributedCli, APortInUseIsNamed) {
  const TakenPort taken;
  const auto begun = Clock::now();
  const Outcome o = run_sdegen_with("MASTER_PORT=" + std::to_string(taken.number),
                                    "train --data laplace5 --steps 5 --n-val 0 --checkpoint-every 5 --nproc 2 "
                                    "--dist-timeout 3 --out " + path("busy"));
  EXPECT_CLI_ERROR(o, "port is in use");
  EXPECT_NE(o.output.find("127.0.0.1:" + std::to_string(taken.number)), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("worker rank 0 of 2"), std::string::npos) << o.output;
  EXPECT_LT(seconds_since(begun), 60.0);
  EXPECT_FALSE(has_checkpoint(path("busy")));
}

TEST_F(DistributedCli, ARankThatNeverArrivesIsAnErrorNotAHang) {
  const int port = free_loopback_port();
  const auto begun = Clock::now();
  const Outcome lonely = run_sdegen_with("RANK=0 WORLD_SIZE=2 MASTER_PORT=" + std::to_string(port),
                                         "train --data laplace5 --steps 5 --n-val 0 --checkpoint-every 5 "
                                         "--dist-timeout 2 --out " + path("lonely"));
  EXPECT_CLI_ERROR(lonely, "error (rank 0): rank 0 of 2: the rendezvous on 127.0.0.1:" + std::to_string(port) +
                               " timed out after 2 s: 1 of 2 processes arrived; missing rank(s) 1");
  EXPECT_LT(seconds_since(begun), 60.0);
  EXPECT_FALSE(has_checkpoint(path("lonely")));
  // Variables that cannot describe a run are refused by name.
  EXPECT_CLI_ERROR(run_sdegen_with("RANK=0 WORLD_SIZE=2", "train --nproc 3 --out " + path("x")),
                   "--nproc 3 disagrees with WORLD_SIZE=2");
  EXPECT_CLI_ERROR(run_sdegen_with("RANK=2 WORLD_SIZE=2", "train --out " + path("x")),
                   "RANK='2' must be an integer in [0, 1]");
}

}  // namespace
}  // namespace sdegen::test
