#include "sdegen/train/classifier_store.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/tensor.h"
#include "sdegen/io/csv.h"
#include "sdegen/io/integrity.h"
#include "sdegen/io/module_archive.h"

namespace sdegen {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "sdegen-classifier";
constexpr int kVersion = 1;
const char* const kConfig = "config.json";
const char* const kWeights = "weights.pt";

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

IoError corrupt(const fs::path& file, const std::string& why) {
  return IoError("classifier file '" + file.string() + "' is corrupt or unreadable: " + why);
}

fs::path sibling(const fs::path& dir, const std::string& suffix) {
  fs::path p = dir.lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "a/b/" -> "a/b"
  return p.string() + suffix;
}

const nlohmann::json& require(const nlohmann::json& j, const std::string& key, const fs::path& file,
                              bool (nlohmann::json::*is)() const noexcept, const char* expected) {
  const auto it = j.find(key);
  if (it == j.end()) throw corrupt(file, "it has no '" + key + "' key");
  if (!((*it).*is)()) throw corrupt(file, "'" + key + "' must be " + expected + ", got " + it->dump());
  return *it;
}

nlohmann::json read_config(const fs::path& dir) {
  const fs::path file = dir / kConfig;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("classifier file '" + file.string() + "' is missing or unreadable");
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw corrupt(file, e.what());
  }
  if (!config.is_object()) throw corrupt(file, "expected a JSON object");
  const nlohmann::json format = require(config, "format", file, &nlohmann::json::is_string, "a string");
  if (format != kFormat) throw corrupt(file, "'format' is " + format.dump() + ", not \"" + kFormat + "\"");
  const nlohmann::json version = require(config, "version", file, &nlohmann::json::is_number_integer, "an integer");
  if (version != kVersion)
    throw IoError("classifier file '" + file.string() + "' has format version " + version.dump() +
                  "; this build reads version " + std::to_string(kVersion));
  require(config, "net", file, &nlohmann::json::is_object, "an object");
  require(config, "classes", file, &nlohmann::json::is_array, "an array of names");
  require(config, "data", file, &nlohmann::json::is_object, "an object");
  require(config, "training", file, &nlohmann::json::is_object, "an object");
  require(config, "test_accuracy", file, &nlohmann::json::is_number, "a number");
  require(config, "seconds", file, &nlohmann::json::is_number, "a number");
  require(require(config, "files", file, &nlohmann::json::is_object, "an object"), kWeights, file,
          &nlohmann::json::is_object, "a digest");
  for (const auto& name : config.at("classes"))
    if (!name.is_string())
      throw corrupt(file, "'classes' must be an array of names, got " + config.at("classes").dump());
  return config;
}

void read_weights(const fs::path& dir, const nlohmann::json& config, Classifier& net) {
  const fs::path file = dir / kWeights;
  if (!fs::is_regular_file(file)) throw IoError("classifier file '" + file.string() + "' is missing");
  FileDigest expected;
  try {
    expected = digest_from_json(config.at("files").at(kWeights));
  } catch (const InvalidArgument& e) {
    throw corrupt(dir / kConfig, e.what());
  }
  const FileDigest actual = file_digest(file.string());
  if (actual.bytes != expected.bytes)
    throw corrupt(file, "it is " + std::to_string(actual.bytes) + " bytes, config.json recorded " +
                            std::to_string(expected.bytes) + " (truncated or changed after it was written)");
  if (actual.crc32 != expected.crc32)
    throw corrupt(file, "its CRC-32 " + actual.crc32 + " differs from the " + expected.crc32 +
                            " recorded in config.json (changed or damaged after it was written)");
  TensorPairs pairs;
  const StoredTensorCheck check{"the file", "the network that config.json describes",
                                [&](const std::string& why) { return corrupt(file, why); }};
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string(), device_of(*net));  // onto the net's device, wherever it was saved
    read_module_tensors(archive, *net, pairs, check);
  } catch (const c10::Error& e) {
    throw corrupt(file, first_line(e.what_without_backtrace()));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("classifier file '" + file.string() + "': " + e.what());
  }
  commit_tensors(pairs);
}

fs::path existing(const std::string& dir) {
  for (const fs::path& p : {fs::path(dir), sibling(dir, ".old")})
    if (fs::is_regular_file(p / kConfig)) return p;
  throw IoError("no classifier in '" + dir + "' (expected '" + (fs::path(dir) / kConfig).string() +
                "'; sdegen train-classifier makes one)");
}

}  // namespace

bool has_classifier(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / kConfig, ec) || fs::is_regular_file(sibling(dir, ".old") / kConfig, ec);
}

void check_classifier_destination(const std::string& dir, bool overwrite) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw IoError("cannot save a classifier as '" + dir + "': it is a file, not a folder");
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name != kConfig && name != kWeights)
      throw IoError("not saving a classifier into '" + dir + "': it holds '" + name +
                    "', which is not part of a classifier; choose a new or empty folder");
  }
  if (!overwrite && has_classifier(dir))
    throw IoError("'" + dir + "' already holds a classifier; pass --overwrite to replace it");
}

void save_classifier(const std::string& dir, const TrainedClassifier& c) {
  SDEGEN_CHECK(c.net, "save_classifier: no network to save");
  SDEGEN_CHECK(static_cast<int64_t>(c.class_names.size()) == c.net->options.num_classes(), "save_classifier: ",
               c.class_names.size(), " class names for a network of ", c.net->options.num_classes(), " classes");
  for (const auto& p : c.net->named_parameters())
    if (!all_finite(p.value()))
      throw NumericError("not saving the classifier '" + dir + "': parameter '" + p.key() +
                         "' holds NaN or infinite values");
  check_classifier_destination(dir, /*overwrite=*/true);
  const fs::path final_dir(dir), tmp = sibling(dir, ".tmp"), old = sibling(dir, ".old");
  nlohmann::json config = {{"format", kFormat},       {"version", kVersion},      {"net", to_json(c.net->options)},
                           {"classes", c.class_names}, {"data", c.data},           {"training", to_json(c.training)},
                           {"test_accuracy", c.test_accuracy}, {"seconds", c.seconds}};
  const std::string bad = non_finite_json_path(config);
  SDEGEN_CHECK(bad.empty(), "save_classifier: '", bad, "' is not a finite number, which JSON cannot store");
  try {
    if (final_dir.has_parent_path()) fs::create_directories(final_dir.parent_path());
    fs::remove_all(tmp);
    fs::create_directory(tmp);
    torch::serialize::OutputArchive archive;
    c.net->save(archive);
    archive.save_to((tmp / kWeights).string());
    config["files"] = {{kWeights, digest_to_json(file_digest((tmp / kWeights).string()))}};
    write_file_atomic((tmp / kConfig).string(), config.dump(2) + "\n");
    if (read_config(tmp) != config)
      throw IoError("cannot write the classifier '" + dir + "': config.json did not read back as written");
    if (fs::exists(final_dir)) {
      fs::remove_all(old);
      fs::rename(final_dir, old);
    }
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } catch (const fs::filesystem_error& e) {
    throw IoError("cannot write the classifier '" + dir + "': " + e.what());
  } catch (const c10::Error& e) {
    throw IoError("cannot write the classifier '" + dir + "': " + first_line(e.what_without_backtrace()));
  }
}

TrainedClassifier load_classifier(const std::string& dir) {
  const fs::path where = existing(dir);
  const nlohmann::json config = read_config(where);
  const fs::path file = where / kConfig;
  TrainedClassifier c;
  try {
    c.net = Classifier(classifier_options_from_json(config.at("net")));
    c.training = classifier_train_options_from_json(config.at("training"));
  } catch (const InvalidArgument& e) {
    throw corrupt(file, e.what());
  }
  c.class_names = config.at("classes").get<std::vector<std::string>>();
  if (static_cast<int64_t>(c.class_names.size()) != c.net->options.num_classes())
    throw corrupt(file, "it names " + std::to_string(c.class_names.size()) + " classes for a network of " +
                            std::to_string(c.net->options.num_classes()));
  c.data = config.at("data");
  c.test_accuracy = config.at("test_accuracy").get<double>();
  c.seconds = config.at("seconds").get<double>();
  read_weights(where, config, c.net);
  c.net->eval();
  return c;
}

}  // namespace sdegen
