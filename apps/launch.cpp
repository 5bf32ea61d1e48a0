#include "apps/launch.h"

#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"

extern char** environ;

namespace sdegen::app {
namespace {

// This process's own arguments, as the kernel recorded them.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SDEGEN_CHECK(in.good() || in.eof(), "--nproc: cannot read /proc/self/cmdline to start the workers");
  std::vector<std::string> args;
  std::string current;
  for (const char c : all) {
    if (c == '\0') args.push_back(current), current.clear();
    else current.push_back(c);
  }
  if (!current.empty()) args.push_back(current);
  return args;
}

std::string describe(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

}  // namespace

void launch_workers(int64_t nproc, double grace_seconds) {
  SDEGEN_CHECK(nproc >= 2, "launch_workers: needs 2 or more workers, got ", nproc);
  const std::vector<std::string> args = own_arguments();
  const char* given_port = std::getenv("MASTER_PORT");
  const std::string port = given_port != nullptr ? given_port : std::to_string(free_loopback_port());
  const std::string addr = std::getenv("MASTER_ADDR") != nullptr ? std::getenv("MASTER_ADDR") : "127.0.0.1";
  // The parent's environment without torchrun's variables, which each worker gets its own of.
  std::vector<std::string> base;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string v = *e;
    const std::string name = v.substr(0, v.find('='));
    if (name != "RANK" && name != "LOCAL_RANK" && name != "WORLD_SIZE" && name != "MASTER_ADDR" &&
        name != "MASTER_PORT" && name != "LOCAL_WORLD_SIZE" && name != "SDEGEN_LAUNCHER_PID")
      base.push_back(v);
  }
  std::map<pid_t, int64_t> rank_of;
  auto stop_all = [&](int sig) {
    for (const auto& [pid, rank] : rank_of) kill(pid, sig);
  };
  for (int64_t r = 0; r < nproc; ++r) {
    std::vector<std::string> env = base;
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"RANK", std::to_string(r)},
             {"LOCAL_RANK", std::to_string(r)},
             {"WORLD_SIZE", std::to_string(nproc)},
             {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
             {"MASTER_ADDR", addr},
             {"MASTER_PORT", port},
             {"SDEGEN_LAUNCHER_PID", std::to_string(getpid())}})
      env.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int err = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    if (err != 0) {
      stop_all(SIGTERM);
      for (const auto& [p, rank] : rank_of) waitpid(p, nullptr, 0);
      throw DistributedError(fmt::format("--nproc: cannot start worker {}: {}", r, std::strerror(err)));
    }
    rank_of[pid] = r;
  }

  std::optional<std::string> failure;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  bool terminated = false;
  while (!rank_of.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, deadline ? WNOHANG : 0);
    if (pid > 0) {
      const int64_t rank = rank_of.at(pid);
      rank_of.erase(pid);
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && !failure) {
        failure = fmt::format("worker rank {} of {} (pid {}) {}", rank, nproc, pid, describe(status));
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (deadline && std::chrono::steady_clock::now() > *deadline) {
      // The survivors did not stop on their own: terminate them (then kill them).
      stop_all(terminated ? SIGKILL : SIGTERM);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      terminated = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failure)
    throw DistributedError(*failure + "; the other workers were stopped (a checkpoint already written is intact: "
                                      "--resume continues from it, with any number of processes)");
}

CommunicatorPtr join_from_environment(int64_t nproc, double timeout_seconds) {
  const std::optional<DistributedEnv> env = distributed_environment();
  if (!env) return nullptr;
  // A worker of --nproc goes when its launcher goes (killed, or stopped by a scheduler), instead
  // of training on alone; the check after prctl catches a launcher that is already gone.
  if (const char* launcher = std::getenv("SDEGEN_LAUNCHER_PID")) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (std::to_string(getppid()) != launcher)
      throw DistributedError("rank " + std::to_string(env->rank) + ": its launcher (pid " + launcher +
                             ") is gone; stopping");
  }
  SDEGEN_CHECK(nproc == 1 || nproc == env->world_size, "--nproc ", nproc, " disagrees with WORLD_SIZE=",
               env->world_size, " set by a launcher; leave --nproc out under an external launcher");
  if (env->world_size == 1) return nullptr;
  SDEGEN_CHECK(timeout_seconds > 0, "--dist-timeout must be positive, got ", timeout_seconds);
  CommunicatorPtr group =
      connect(*env, std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000.0)));
  // Rank 0 reports; the others' results are the same numbers.
  if (group->rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
    throw IoError("cannot silence rank " + std::to_string(group->rank()) + "'s standard output");
  return group;
}

}  // namespace sdegen::app
