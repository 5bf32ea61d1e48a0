#pragma once
// Running the sdegen program from a test: its path comes from CTest (SDEGEN_BIN), its output is
// captured, and each test gets a fresh directory of its own (unique per process, since ctest runs
// tests in parallel and another checkout's suite may run at the same time).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <string>
#include <vector>

#include "support/support.h"

namespace sdegen::test {

struct Outcome {
  int code;
  std::string output;  // stdout and stderr together
};

inline Outcome run_sdegen(const std::string& args) {
  const char* bin = std::getenv("SDEGEN_BIN");
  if (!bin) return {-1, "SDEGEN_BIN is not set (run the tests through ctest)"};
  const std::string cmd = std::string(bin) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The rows of a CSV file with a header line, as numbers.
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

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class CliRun : public ::testing::Test {
 protected:
  std::filesystem::path dir = temp_path(
      "cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  void SetUp() override {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace sdegen::test
