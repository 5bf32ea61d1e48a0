// libFuzzer target: the CSV reader, then the standardiser fitted on what it accepted. A reader
// may refuse input only with sdegen::Error (a message for the user); any other exception, a
// crash or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "sdegen/core/error.h"
#include "sdegen/data/csv_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sdegen::CsvData csv = sdegen::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
    const sdegen::Standardizer st = sdegen::fit_standardizer(csv.x);
    sdegen::Standardizer::from_json(st.to_json(), csv.x.size(1));  // what a checkpoint stores reads back
  } catch (const sdegen::Error&) {
  }
  return 0;
}
