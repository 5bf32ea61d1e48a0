#pragma once
// Typed reads of a JSON options object (a network's or a model's configuration), with messages
// that name the owner and the key: "DiT options: missing key 'patch'", "DiT options: 'depth'
// must be an integer, got 2.5", "unknown DiT option 'dpeth'; valid: ...".
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sdegen {

class JsonFields {
 public:
  // Refuses a value that is not an object, and any key not in `keys`.
  JsonFields(const nlohmann::json& object, std::string owner, const std::vector<std::string>& keys);

  bool has(const std::string& key) const { return object_.contains(key); }
  // Each refuses a missing key or a value of another type.
  const nlohmann::json& at(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  std::string text(const std::string& key) const;
  bool flag(const std::string& key) const;
  std::vector<int64_t> integers(const std::string& key) const;
  // Refuses a "type" other than `type`.
  void expect_type(const std::string& type) const;

 private:
  const nlohmann::json& object_;
  std::string owner_;
};

}  // namespace sdegen
