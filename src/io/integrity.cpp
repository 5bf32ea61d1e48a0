#include "sdegen/io/integrity.h"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "sdegen/core/check.h"

namespace sdegen {

FileDigest file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read '" + path + "' to check it");
  // zlib's crc32: maintained, fast, and already linked through libpng.
  uLong crc = crc32(0L, Z_NULL, 0);
  FileDigest d;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer.data()), static_cast<uInt>(got));
    d.bytes += static_cast<uint64_t>(got);
  }
  if (in.bad()) throw IoError("failed while reading '" + path + "' to check it");
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc & 0xffffffffUL));
  d.crc32 = hex;
  return d;
}

nlohmann::json digest_to_json(const FileDigest& d) { return {{"bytes", d.bytes}, {"crc32", d.crc32}}; }

FileDigest digest_from_json(const nlohmann::json& j) {
  SDEGEN_CHECK(j.is_object() && j.size() == 2 && j.contains("bytes") && j.contains("crc32") &&
                   j.at("bytes").is_number_unsigned() && j.at("crc32").is_string() &&
                   j.at("crc32").get<std::string>().size() == 8,
               "a file digest must be {\"bytes\": N, \"crc32\": \"8 hex digits\"}, got ", j.dump());
  return {j.at("bytes").get<uint64_t>(), j.at("crc32").get<std::string>()};
}

std::string non_finite_json_path(const nlohmann::json& j) {
  if (j.is_number_float()) return std::isfinite(j.get<double>()) ? "" : "(value)";
  if (j.is_object()) {
    for (const auto& item : j.items()) {
      const std::string inner = non_finite_json_path(item.value());
      if (inner.empty()) continue;
      return inner == "(value)" ? item.key()
                                : item.key() + (inner.front() == '[' ? "" : ".") + inner;
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string inner = non_finite_json_path(j[i]);
      if (inner.empty()) continue;
      const std::string here = "[" + std::to_string(i) + "]";
      return inner == "(value)" ? here : here + (inner.front() == '[' ? "" : ".") + inner;
    }
  }
  return "";
}

}  // namespace sdegen
