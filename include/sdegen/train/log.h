#pragma once
// log.csv of a training run: one row per logged step, appended and flushed as training goes, so
// that it can be followed while it grows and survives a crash up to the last row.
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace sdegen {

class TrainLog {
 public:
  // Starts the file at path with the header "step,<columns...>". With keep_through >= 0 (a
  // resumed run) an existing file with the same header keeps its rows with step <= keep_through
  // (rows after the checkpoint came from the interrupted run and are dropped); one with another
  // header is moved aside to "<path>.before-step-<keep_through>". IoError if it cannot be written.
  TrainLog(std::string path, std::vector<std::string> columns, int64_t keep_through = -1);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& columns() const { return columns_; }

  // Appends "step,v1,...": one value per column, written with 10 significant digits; an empty
  // optional leaves its cell empty (a validation column on a row without validation).
  void write(int64_t step, const std::vector<std::optional<double>>& values);

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::ofstream out_;
};

}  // namespace sdegen
