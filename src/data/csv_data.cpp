#include "sdegen/data/csv_data.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"

namespace sdegen {

namespace {

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IoError("data file '" + path + "' is a directory, not a CSV file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open data file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Lines without their ends: "\n", "\r\n", or a lone "\r" (old Mac files, which spreadsheet
// programs still write as "CSV (Macintosh)").
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '\n' && c != '\r') {
      line += c;
      continue;
    }
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    lines.push_back(std::move(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(trim(field));
  if (!line.empty() && line.back() == ',') fields.push_back("");  // getline drops a last empty field
  return fields;
}

// The whole field as a number (NaN and infinities included: they are refused later, with a
// message that says so rather than "not a number").
bool parse_number(const std::string& field, double& value) {
  if (field.empty()) return false;
  char* end = nullptr;
  value = std::strtod(field.c_str(), &end);
  return end == field.c_str() + field.size();
}

bool all_numbers(const std::vector<std::string>& fields) {
  double ignored = 0;
  for (const auto& f : fields)
    if (!parse_number(f, ignored)) return false;
  return true;
}

std::vector<std::string> header_names(const std::vector<std::string>& fields) {
  std::vector<std::string> names;
  for (size_t j = 0; j < fields.size(); ++j) {
    std::string name = fields[j];
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
    names.push_back(name.empty() ? "x" + std::to_string(j + 1) : name);
  }
  return names;
}

// Appends one data row's values; `where` is "data file '<path>': line <k>".
void parse_row(const std::vector<std::string>& fields, const std::string& where, std::vector<double>& out) {
  for (size_t j = 0; j < fields.size(); ++j) {
    const std::string at = where + ", column " + std::to_string(j + 1) + ": ";
    double v = 0;
    SDEGEN_CHECK(!fields[j].empty(), at, "empty field, expected a number");
    SDEGEN_CHECK(parse_number(fields[j], v), at, "'", fields[j], "' is not a number");
    SDEGEN_CHECK(std::isfinite(v), at, "non-finite value '", fields[j], "'");
    out.push_back(v);
  }
}

void check_matrix(const torch::Tensor& x, const char* what) {
  SDEGEN_CHECK(x.defined() && x.dim() == 2, what, " must have shape [n, d], got ",
               x.defined() ? x.sizes() : torch::IntArrayRef{});
}

}  // namespace

CsvData load_csv(const std::string& path) { return parse_csv(read_text(path), path); }

bool is_csv_name(const std::string& spec) {
  const std::string ext = ".csv";
  return spec.size() > ext.size() && spec.compare(spec.size() - ext.size(), ext.size(), ext) == 0;
}

CsvData parse_csv(std::string text, const std::string& path) {
  // Spreadsheet programs often start UTF-8 files with a byte-order mark.
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  const std::vector<std::string> lines = split_lines(text);
  const std::string file = "data file '" + path + "'";
  size_t end = lines.size();  // one past the last non-blank line
  while (end > 0 && trim(lines[end - 1]).empty()) --end;
  SDEGEN_CHECK(end > 0, file, " has no data rows");

  const std::vector<std::string> first = split_fields(lines[0]);
  const bool has_header = !all_numbers(first);
  CsvData data;
  data.path = path;
  if (has_header) {
    data.columns = header_names(first);
  } else {
    for (size_t j = 0; j < first.size(); ++j) data.columns.push_back("x" + std::to_string(j + 1));
  }
  SDEGEN_CHECK(end > (has_header ? 1u : 0u), file, " has a header but no data rows");

  std::vector<double> values;
  for (size_t i = has_header ? 1 : 0; i < end; ++i) {
    const std::string where = file + ": line " + std::to_string(i + 1);
    SDEGEN_CHECK(!trim(lines[i]).empty(), where, " is blank (blank lines are allowed only at the end)");
    const std::vector<std::string> fields = split_fields(lines[i]);
    SDEGEN_CHECK(fields.size() == first.size(), where, " has ", fields.size(), " fields, expected ",
                 first.size(), " (as on line 1)");
    parse_row(fields, where, values);
  }
  const auto n = static_cast<int64_t>(end - (has_header ? 1 : 0));
  const auto d = static_cast<int64_t>(first.size());
  data.x = torch::from_blob(values.data(), {n, d}, torch::kDouble).clone();
  return data;
}

torch::Tensor Standardizer::transform(const torch::Tensor& x) const {
  check_matrix(x, "data to standardise");
  SDEGEN_CHECK(x.size(1) == dim(), "the standardizer was fitted on ", dim(), " columns, got data with ",
               x.size(1));
  return (x - mean.to(x.options())) / std.to(x.options());
}

torch::Tensor Standardizer::inverse(const torch::Tensor& z) const {
  check_matrix(z, "standardised data");
  SDEGEN_CHECK(z.size(1) == dim(), "the standardizer was fitted on ", dim(), " columns, got data with ",
               z.size(1));
  return z * std.to(z.options()) + mean.to(z.options());
}

nlohmann::json Standardizer::to_json() const {
  const torch::Tensor m = mean.to(torch::kDouble).contiguous(), s = std.to(torch::kDouble).contiguous();
  return {{"mean", std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel())},
          {"std", std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel())}};
}

Standardizer Standardizer::from_json(const nlohmann::json& j, int64_t expected_dim) {
  SDEGEN_CHECK(j.is_object(), "standardizer must be a JSON object with \"mean\" and \"std\"");
  auto numbers = [&](const char* key) {
    SDEGEN_CHECK(j.contains(key), "standardizer has no \"", key, "\" field");
    const nlohmann::json& a = j.at(key);
    SDEGEN_CHECK(a.is_array() && !a.empty(), "standardizer \"", key,
                 "\" must be a non-empty list of numbers");
    std::vector<double> v;
    for (const auto& e : a) {
      SDEGEN_CHECK(e.is_number(), "standardizer \"", key, "\" must hold numbers, found ", e.dump());
      v.push_back(e.get<double>());
      SDEGEN_CHECK(std::isfinite(v.back()), "standardizer \"", key, "\" holds a non-finite value");
    }
    return v;
  };
  const std::vector<double> m = numbers("mean"), s = numbers("std");
  SDEGEN_CHECK(m.size() == s.size(), "standardizer \"mean\" has ", m.size(), " entries but \"std\" has ",
               s.size());
  for (double v : s) SDEGEN_CHECK(v > 0, "standardizer \"std\" entries must be positive, found ", v);
  const auto d = static_cast<int64_t>(m.size());
  SDEGEN_CHECK(expected_dim < 0 || d == expected_dim, "standardizer has ", d, " dimensions but the data has ",
               expected_dim);
  return {torch::tensor(m, torch::kDouble), torch::tensor(s, torch::kDouble)};
}

Standardizer fit_standardizer(const torch::Tensor& x) {
  check_matrix(x, "data to fit a standardizer on");
  SDEGEN_CHECK(x.size(0) > 0 && x.size(1) > 0, "cannot fit a standardizer on empty data of shape ",
               x.sizes());
  const torch::Tensor xd = x.to(torch::kDouble);
  SDEGEN_CHECK(torch::isfinite(xd).all().item<bool>(), "cannot fit a standardizer on non-finite data");
  // Moments of each column divided by a power of two near its largest magnitude, then scaled
  // back: the sum of squares of values near 1e200 would overflow to infinity (and be stored as
  // JSON null); these cannot, and a power of two scales exactly, so ordinary data get the same
  // bits as without the scaling.
  const torch::Tensor largest = xd.abs().amax(0).contiguous();
  std::vector<double> powers(static_cast<size_t>(x.size(1)));
  for (size_t j = 0; j < powers.size(); ++j) {
    int exponent = 0;
    std::frexp(largest.data_ptr<double>()[j], &exponent);
    powers[j] = std::ldexp(1.0, exponent - 1);  // 2^(e-1) <= largest < 2^e; finite up to DBL_MAX
  }
  const torch::Tensor scale = torch::tensor(powers, torch::kDouble);
  const torch::Tensor unit = xd / scale;
  const torch::Tensor mean = unit.mean(0) * scale;
  // Population std: defined for a single row (as 0, then floored) where the n-1 form is not.
  const torch::Tensor sd = unit.std(0, /*unbiased=*/false) * scale;
  const torch::Tensor floor = kConstantColumnTolerance * mean.abs().clamp_min(1.0);
  const torch::Tensor st = torch::maximum(sd, floor);
  for (int64_t j = 0; j < x.size(1); ++j)
    SDEGEN_CHECK(std::isfinite(mean[j].item<double>()) && std::isfinite(st[j].item<double>()) &&
                     std::isfinite(1.0 / st[j].item<double>()),
                 "column ", j + 1, " cannot be standardised: its values reach ", largest[j].item<double>(),
                 ", beyond what double precision can scale (mean ", mean[j].item<double>(), ", spread ",
                 st[j].item<double>(), ")");
  return {mean, st};
}

std::vector<int64_t> column_indices(const CsvData& csv, const std::vector<std::string>& names,
                                    const std::string& what, const std::string& note) {
  std::vector<int64_t> indices;
  for (const std::string& name : names) {
    const auto at = std::find(csv.columns.begin(), csv.columns.end(), name);
    SDEGEN_CHECK(at != csv.columns.end(), what, ": '", csv.path, "' has no column '", name, "'", note,
                 "; its columns are ", join(csv.columns));
    const int64_t j = at - csv.columns.begin();
    SDEGEN_CHECK(std::find(indices.begin(), indices.end(), j) == indices.end(), what, " names '", name, "' twice");
    indices.push_back(j);
  }
  return indices;
}

torch::Tensor select_columns(const CsvData& csv, const std::vector<std::string>& names, const std::string& what,
                             const std::string& note) {
  return csv.x.index_select(1, torch::tensor(column_indices(csv, names, what, note), torch::kLong));
}

TrainValSplit split_train_val(const torch::Tensor& x, double val_fraction, uint64_t seed) {
  SDEGEN_CHECK(x.defined() && x.dim() >= 1, "data to split must have rows");
  SDEGEN_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "validation fraction must be in [0, 1), got ",
               val_fraction);
  const int64_t n = x.size(0);
  int64_t n_val = std::llround(val_fraction * static_cast<double>(n));
  if (val_fraction > 0) n_val = std::max<int64_t>(n_val, 1);  // asked for validation: get some
  SDEGEN_CHECK(n - n_val >= 1, "a validation fraction of ", val_fraction, " of ", n,
               " rows leaves no training rows");
  // A private generator: the split depends on the seed alone, not on what ran before.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor perm = torch::randperm(n, gen, torch::dtype(torch::kLong));
  const auto rows = [&](int64_t from, int64_t to) {
    return x.index_select(0, std::get<0>(perm.slice(0, from, to).sort()).to(x.device()));
  };
  return {rows(n_val, n), rows(0, n_val)};
}

void check_dimension(int64_t expected_d, int64_t actual_d, const std::string& source) {
  SDEGEN_CHECK(actual_d == expected_d, "data in '", source, "' has ", actual_d,
               " columns but the model was trained on ", expected_d);
}

}  // namespace sdegen
