#pragma once
// Running the sdegen program from a test: its exit code and output, and a scratch directory per
// test. The binary's path comes from CTest (SDEGEN_BIN).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "sdegen/io/png.h"
#include "support/support.h"

namespace sdegen::test {

struct Outcome {
  int code;
  std::string output;  // stdout and stderr together
};

// A shell command line's exit code and output.
inline Outcome run_sdegen_command(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// `sdegen ARGS` through the shell (ARGS may quote).
inline Outcome run_sdegen(const std::string& args) {
  const char* bin = std::getenv("SDEGEN_BIN");
  if (!bin) return {-1, "SDEGEN_BIN is not set (run the tests through ctest)"};
  return run_sdegen_command(std::string(bin) + " " + args);
}

// `sdegen ARGS` with environment variables set first (ENV: "NAME=value ...").
inline Outcome run_sdegen_with(const std::string& env, const std::string& args) {
  const char* bin = std::getenv("SDEGEN_BIN");
  if (!bin) return {-1, "SDEGEN_BIN is not set (run the tests through ctest)"};
  return run_sdegen_command("env " + env + " " + bin + " " + args);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The rows of a CSV file with a header line, as numbers (an empty cell is NaN).
inline std::vector<std::vector<double>> read_csv_rows(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<double>> rows;
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(cell.empty() ? NAN : std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

// root/<a|b>/<k>.png, 12 images each: 8x8 grey, class a bright on the left half, class b on the
// right. Returns root.
inline std::string write_two_class_folder(const std::string& root) {
  for (const std::string cls : {"a", "b"}) {
    std::filesystem::create_directories(root + "/" + cls);
    for (int k = 0; k < 12; ++k) {
      torch::Tensor img = torch::full({1, 8, 8}, 30, torch::kUInt8);
      img.narrow(2, cls == "a" ? 0 : 4, 4).fill_(200 + k);
      write_png(root + "/" + cls + "/" + std::to_string(k) + ".png", img);
    }
  }
  return root;
}

// A fresh directory per test, unique per process too (another checkout's suite may run the same
// test at the same time), removed afterwards.
class CliTest : public ::testing::Test {
 protected:
  std::filesystem::path dir =
      temp_path("cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  void SetUp() override {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  // Data rows of a CSV file written by sdegen (one header line).
  int64_t rows(const std::string& file) const {
    std::ifstream in(file);
    int64_t n = 0;
    for (std::string line; std::getline(in, line);) n += !line.empty();
    return n - 1;
  }
};

// Expects a non-zero exit and `fragment` in the output.
#define EXPECT_CLI_ERROR(outcome, fragment)                                                     \
  do {                                                                                          \
    const ::sdegen::test::Outcome o_ = (outcome);                                               \
    EXPECT_NE(o_.code, 0) << o_.output;                                                         \
    EXPECT_NE(o_.output.find(fragment), std::string::npos) << "expected '" << (fragment)        \
                                                           << "' in: " << o_.output;            \
  } while (0)

}  // namespace sdegen::test
