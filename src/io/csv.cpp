#include "sdegen/io/csv.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "sdegen/core/check.h"

namespace sdegen {

void write_file_atomic(const std::string& path, const std::string& text) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IoError("cannot write '" + path + "': it is a directory; give a file name");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw IoError("cannot write '" + path + "' (could not create '" + tmp + "')");
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw IoError("failed while writing '" + tmp + "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError("cannot move '" + tmp + "' into place as '" + path + "'");
  }
}

void write_csv(const std::string& path, const torch::Tensor& x, const std::vector<std::string>& header) {
  SDEGEN_CHECK(x.dim() == 2, "CSV output needs a [n, d] tensor, got shape ", x.sizes());
  const torch::Tensor c = x.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t n = c.size(0), d = c.size(1);
  SDEGEN_CHECK(header.empty() || static_cast<int64_t>(header.size()) == d, "CSV header has ",
               header.size(), " names for ", d, " columns");
  std::ostringstream os;
  for (int64_t j = 0; j < d; ++j)
    os << (j ? "," : "") << (header.empty() ? "x" + std::to_string(j + 1) : header[j]);
  os << '\n' << std::setprecision(17);
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) os << (j ? "," : "") << p[i * d + j];
    os << '\n';
  }
  write_file_atomic(path, os.str());
}

}  // namespace sdegen
