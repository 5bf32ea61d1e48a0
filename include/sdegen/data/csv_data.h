#pragma once
// User data from numeric CSV files: loading with errors that point at the line and column,
// per-column standardisation that can be stored in a checkpoint as JSON, a seeded
// train/validation split, and the dimension check made when a checkpoint meets new data.
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace sdegen {

struct CsvData {
  torch::Tensor x;                   // [n, d], double
  std::vector<std::string> columns;  // d names, from the header or x1..xd
  std::string path;
};

// Reads a numeric CSV file: comma separated, whitespace around fields allowed, LF, CRLF or CR
// line ends, a UTF-8 byte-order mark skipped, blank lines allowed only at the end. The first line is
// a header when its fields are not all numbers (header fields in double quotes lose the quotes;
// an empty header field is named x<column>). Refused with InvalidArgument naming the file and
// the 1-based line (and column): a row whose field count differs from the first line's, a field
// that is not a number, a NaN or infinite value, a blank line before the last row, and a file
// with no data rows. A file that cannot be opened, or a directory, is an IoError naming the path.
CsvData load_csv(const std::string& path);
// Whether a data spec names a CSV file: a name ending in ".csv" after at least one character.
bool is_csv_name(const std::string& spec);
// The same reading of a file's contents (`path` names it in messages).
CsvData parse_csv(std::string text, const std::string& path);

// The indices of the named columns of csv, in the order given. An unknown name is refused with
// InvalidArgument "<what>: '<path>' has no column '<name>'<note>; its columns are a, b, c"; a name
// given twice with "<what> names '<name>' twice".
std::vector<int64_t> column_indices(const CsvData& csv, const std::vector<std::string>& names,
                                    const std::string& what, const std::string& note = "");
// The named columns of csv, in the order given: [rows, names.size()] (column_indices' refusals).
torch::Tensor select_columns(const CsvData& csv, const std::vector<std::string>& names, const std::string& what,
                             const std::string& note = "");

// Per-column standardisation z = (x - mean) / std, fitted on the training rows and stored with
// the model so that samples can be mapped back to data units.
struct Standardizer {
  torch::Tensor mean;  // [d], double
  torch::Tensor std;   // [d], double, positive (see kConstantColumnTolerance)

  int64_t dim() const { return mean.size(0); }
  // x [n, d] -> z [n, d], in x's dtype and on its device; a wrong d is refused.
  torch::Tensor transform(const torch::Tensor& x) const;
  // z [n, d] -> x [n, d]: the exact inverse of transform (up to rounding).
  torch::Tensor inverse(const torch::Tensor& z) const;
  // {"mean": [...], "std": [...]}, written with enough digits to round-trip exactly.
  nlohmann::json to_json() const;
  // Refuses missing keys, non-numeric entries, mean and std of different lengths, a
  // non-positive or non-finite std, and (when expected_dim >= 0) a dimension other than
  // expected_dim, each with a message naming the field.
  static Standardizer from_json(const nlohmann::json& j, int64_t expected_dim = -1);
};

// A column whose (population) std is below kConstantColumnTolerance * max(1, |mean|) is treated
// as constant: its std is set to that floor rather than 0 (or 1, as some libraries do), so
// transform maps the training value to 0 and inverse maps any model output z back to within
// floor * |z| of the constant, instead of spreading it out.
constexpr double kConstantColumnTolerance = 1e-8;

// Mean and population std of each column of x [n, d] (n >= 1, all finite).
Standardizer fit_standardizer(const torch::Tensor& x);

struct TrainValSplit {
  torch::Tensor train;  // rows of x not held out, in their original order
  torch::Tensor val;    // round(val_fraction * n) rows (at least 1 when val_fraction > 0)
};

// A random split of the rows of x [n, d], fixed by seed and independent of torch's global
// generator. Refuses val_fraction outside [0, 1) and a split that leaves no training rows.
TrainValSplit split_train_val(const torch::Tensor& x, double val_fraction, uint64_t seed);

// Throws InvalidArgument "data in '<source>' has 3 columns but the model was trained on 2"
// unless actual_d == expected_d.
void check_dimension(int64_t expected_d, int64_t actual_d, const std::string& source);

}  // namespace sdegen
