#include "sdegen/train/log.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/io/csv.h"

namespace sdegen {

namespace {

// The rows of an existing log with step <= keep_through, or nullopt when its header differs.
std::optional<std::string> kept_rows(const std::string& path, const std::string& header,
                                     int64_t keep_through) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line != header) return std::nullopt;
  std::string kept;
  while (std::getline(in, line)) {
    try {
      if (std::stoll(line.substr(0, line.find(','))) <= keep_through) kept += line + "\n";
    } catch (const std::exception&) {
      // A torn last line from a crash: drop it.
    }
  }
  return kept;
}

}  // namespace

TrainLog::TrainLog(std::string path, std::vector<std::string> columns, int64_t keep_through)
    : path_(std::move(path)), columns_(std::move(columns)) {
  const std::string header = "step," + join(columns_, ",");
  std::string text = header + "\n";
  if (keep_through >= 0 && std::filesystem::exists(path_)) {
    if (auto rows = kept_rows(path_, header, keep_through)) {
      text += *rows;
    } else {
      const std::string aside = path_ + ".before-step-" + std::to_string(keep_through);
      if (std::rename(path_.c_str(), aside.c_str()) != 0)
        throw IoError("cannot move the old training log '" + path_ + "' aside to '" + aside + "'");
    }
  }
  write_file_atomic(path_, text);
  out_.open(path_, std::ios::app);
  if (!out_) throw IoError("cannot append to the training log '" + path_ + "'");
}

void TrainLog::write(int64_t step, const std::vector<std::optional<double>>& values) {
  SDEGEN_CHECK(values.size() == columns_.size(), "TrainLog: ", values.size(), " values for ",
               columns_.size(), " columns");
  std::string line = std::to_string(step);
  char buf[32];
  for (const auto& v : values) {
    line += ',';
    if (v) {
      std::snprintf(buf, sizeof buf, "%.10g", *v);
      line += buf;
    }
  }
  out_ << line << '\n' << std::flush;
  if (!out_) throw IoError("failed while writing the training log '" + path_ + "'");
}

}  // namespace sdegen
