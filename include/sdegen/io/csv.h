#pragma once
// Numeric CSV files: one row per point.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace sdegen {

// Writes x [n, d] (any dtype; written as double with 17 significant digits) with a header line
// of column names (x1..xd when empty). The file is written to a temporary name beside `path`
// and renamed into place, so a failure never leaves a half-written file.
void write_csv(const std::string& path, const torch::Tensor& x,
               const std::vector<std::string>& header = {});

// Writes `text` to path atomically (temporary file, then rename). Creates no directories.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace sdegen
