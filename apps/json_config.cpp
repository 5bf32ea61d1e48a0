#include "apps/json_config.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <fstream>
#include <memory>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"

namespace sdegen::app {
namespace {

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  // JSON has one number type: 1e3 and 1000.0 are the integer 1000 to an integer option.
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (std::isfinite(x) && x == std::floor(x) && std::abs(x) < 9007199254740992.0)  // 2^53: exact
      return std::to_string(static_cast<long long>(x));
  }
  return v.dump();  // numbers; objects and arrays of objects keep their JSON text
}

// "3" -> 3, "true" -> true, "x" -> "x": so a recorded run reads naturally.
nlohmann::json typed(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  if (!text.empty() && (text.front() == '{' || text.front() == '[')) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) return j;
  }
  try {
    size_t used = 0;
    const double number = std::stod(text, &used);
    if (used == text.size()) {
      if (text.find_first_of(".eE") == std::string::npos) return std::stoll(text);
      return number;
    }
  } catch (const std::exception&) {
  }
  return text;
}

}  // namespace

std::vector<CLI::ConfigItem> JsonConfig::from_config(std::istream& input) const {
  nlohmann::json j;
  try {
    // The whole stream: parse() refuses anything after the object, where `input >> j` stops.
    j = nlohmann::json::parse(std::string(std::istreambuf_iterator<char>(input), {}));
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string("config file is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw InvalidArgument("config file must hold a JSON object of option names, got " + j.dump());
  std::vector<CLI::ConfigItem> items;
  for (const auto& item : j.items()) {
    if (item.value().is_null()) continue;
    CLI::ConfigItem c;
    c.name = item.key();
    std::replace(c.name.begin(), c.name.end(), '_', '-');
    if (item.value().is_array()) {
      for (const auto& v : item.value()) c.inputs.push_back(scalar_text(v));
    } else {
      c.inputs.push_back(scalar_text(item.value()));
    }
    items.push_back(std::move(c));
  }
  return items;
}

nlohmann::json options_json(const CLI::App& command) {
  nlohmann::json out = nlohmann::json::object();
  for (const CLI::Option* opt : command.get_options()) {
    const std::string name = opt->get_single_name();
    if (opt->get_lnames().empty() || name == "help" || name == "config" || name == "help-all") continue;
    if (opt->get_expected_max() == 0) {  // a flag
      out[name] = opt->count() > 0;
      continue;
    }
    // An option left at an empty default ("the model's choice") is not recorded: written as "",
    // it would be read back as a choice named "".
    if (opt->count() == 0 && opt->get_default_str().empty()) continue;
    const std::vector<std::string> values =
        opt->count() > 0 ? opt->results() : std::vector<std::string>{opt->get_default_str()};
    if (values.size() == 1) {
      out[name] = typed(values[0]);
    } else {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& v : values) list.push_back(typed(v));
      out[name] = list;
    }
  }
  return out;
}

std::string JsonConfig::to_config(const CLI::App* app, bool, bool, std::string) const {
  return options_json(*app).dump(2) + "\n";
}

void add_json_config(CLI::App* command, std::string* path) {
  command->add_option("--config", *path, "JSON file of options ({\"steps\": 4000, ...}); flags override it");
}

// CLI11 reads config files for the top-level app only, so a command applies its own.
void apply_json_config(CLI::App* command, const std::string& path) {
  if (path.empty()) return;
  std::ifstream in(path);
  if (!in) throw IoError("cannot read config file '" + path + "'");
  apply_json_config_text(command, std::string(std::istreambuf_iterator<char>(in), {}), path);
}

void apply_json_config_text(CLI::App* command, const std::string& text, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    std::istringstream in(text);
    items = JsonConfig().from_config(in);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(path + ": " + e.what());
  }
  std::vector<std::string> known;
  for (const CLI::Option* opt : command->get_options())
    if (!opt->get_lnames().empty()) known.push_back(opt->get_single_name());
  for (const CLI::ConfigItem& item : items) {
    CLI::Option* opt = command->get_option_no_throw("--" + item.name);
    if (opt == nullptr || item.name == "config" || item.name == "help")
      throw InvalidArgument(path + ": unknown option '" + item.name + "'; valid: " + join(known));
    if (opt->count() > 0) continue;  // given on the command line: the flag wins
    for (const auto& v : item.inputs) opt->add_result(v);
    try {
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw InvalidArgument(path + ": option '" + item.name + "' = " + join(item.inputs) + ": " + e.what());
    }
  }
}

}  // namespace sdegen::app
