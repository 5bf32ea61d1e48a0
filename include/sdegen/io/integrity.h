#pragma once
// Checks on what goes to disk and comes back: file checksums, so that a checkpoint file changed
// after it was written is refused by name instead of loading as wrong weights, and a search for
// non-finite numbers in JSON, which nlohmann::json would otherwise write as null (a file that
// could never be read back).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace sdegen {

struct FileDigest {
  uint64_t bytes = 0;
  std::string crc32;  // 8 lower-case hex digits (zlib's CRC-32 of the whole file)
  bool operator==(const FileDigest& o) const { return bytes == o.bytes && crc32 == o.crc32; }
};

// The size and CRC-32 of a file; IoError naming it when it cannot be read.
FileDigest file_digest(const std::string& path);

// {"bytes": N, "crc32": "..."} and back; from_json refuses anything else (InvalidArgument).
nlohmann::json digest_to_json(const FileDigest& digest);
FileDigest digest_from_json(const nlohmann::json& j);

// The path (e.g. "extra.standardizer.std[2]") of the first NaN or infinite number in j, or an
// empty string when every number is finite.
std::string non_finite_json_path(const nlohmann::json& j);

}  // namespace sdegen
