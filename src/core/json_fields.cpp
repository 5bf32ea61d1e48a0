#include "sdegen/core/json_fields.h"

#include <algorithm>

#include "sdegen/core/check.h"

namespace sdegen {

JsonFields::JsonFields(const nlohmann::json& object, std::string owner, const std::vector<std::string>& keys)
    : object_(object), owner_(std::move(owner)) {
  SDEGEN_CHECK(object_.is_object(), owner_, " options: expected a JSON object, got ", object_.dump());
  for (const auto& item : object_.items()) check_name(owner_ + " option", item.key(), keys);
}

const nlohmann::json& JsonFields::at(const std::string& key) const {
  const auto it = object_.find(key);
  SDEGEN_CHECK(it != object_.end(), owner_, " options: missing key '", key, "'");
  return *it;
}

int64_t JsonFields::integer(const std::string& key) const {
  const nlohmann::json& v = at(key);
  SDEGEN_CHECK(v.is_number_integer(), owner_, " options: '", key, "' must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

double JsonFields::number(const std::string& key) const {
  const nlohmann::json& v = at(key);
  SDEGEN_CHECK(v.is_number(), owner_, " options: '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

std::string JsonFields::text(const std::string& key) const {
  const nlohmann::json& v = at(key);
  SDEGEN_CHECK(v.is_string(), owner_, " options: '", key, "' must be a string, got ", v.dump());
  return v.get<std::string>();
}

bool JsonFields::flag(const std::string& key) const {
  const nlohmann::json& v = at(key);
  SDEGEN_CHECK(v.is_boolean(), owner_, " options: '", key, "' must be true or false, got ", v.dump());
  return v.get<bool>();
}

std::vector<int64_t> JsonFields::integers(const std::string& key) const {
  const nlohmann::json& v = at(key);
  const bool ok = v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number_integer(); });
  SDEGEN_CHECK(ok, owner_, " options: '", key, "' must be an array of integers, got ", v.dump());
  return v.get<std::vector<int64_t>>();
}

void JsonFields::expect_type(const std::string& type) const {
  const nlohmann::json& v = at("type");
  SDEGEN_CHECK(v == type, owner_, " options: 'type' must be \"", type, "\", got ", v.dump());
}

}  // namespace sdegen
