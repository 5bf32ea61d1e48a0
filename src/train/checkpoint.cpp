#include "sdegen/train/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/tensor.h"
#include "sdegen/io/csv.h"
#include "sdegen/io/integrity.h"
#include "sdegen/io/module_archive.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/optim.h"

namespace sdegen {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "sdegen-checkpoint";
constexpr int kVersion = 1;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

IoError corrupt(const fs::path& file, const std::string& why) {
  return IoError("checkpoint '" + file.string() + "' is corrupt or unreadable: " + why);
}

void write_archive(const fs::path& file, const std::function<void(torch::serialize::OutputArchive&)>& fill) {
  torch::serialize::OutputArchive archive;
  fill(archive);
  archive.save_to(file.string());
}

// The file's size and CRC-32 against those config.json recorded (when it recorded them).
void verify_file(const fs::path& file, const nlohmann::json& config) {
  const auto files = config.find("files");
  if (files == config.end()) return;  // written before checksums were recorded
  const auto entry = files->find(file.filename().string());
  if (entry == files->end()) throw corrupt(file, "config.json records no checksum for it");
  const FileDigest expected = digest_from_json(*entry);
  if (!fs::is_regular_file(file)) throw IoError("checkpoint file '" + file.string() + "' is missing");
  const FileDigest actual = file_digest(file.string());
  if (actual.bytes != expected.bytes)
    throw corrupt(file, "it is " + std::to_string(actual.bytes) + " bytes, config.json recorded " +
                            std::to_string(expected.bytes) + " (truncated or changed after it was written)");
  if (actual.crc32 != expected.crc32)
    throw corrupt(file, "its CRC-32 " + actual.crc32 + " differs from the " + expected.crc32 +
                            " recorded in config.json (changed or damaged after it was written)");
}

// The archive's tensors are put on `device` (a run saved on a GPU loads on a CPU-only machine, and a
// CPU run resumes on a GPU); nullopt: where they were saved (the generator state: always the CPU).
torch::serialize::InputArchive open_archive(const fs::path& file, const nlohmann::json& config,
                                            const c10::optional<torch::Device>& device = c10::nullopt) {
  if (!fs::is_regular_file(file)) throw IoError("checkpoint file '" + file.string() + "' is missing");
  verify_file(file, config);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string(), device);
  } catch (const c10::Error& e) {
    throw corrupt(file, first_line(e.what_without_backtrace()));
  }
  return archive;
}

// Runs `read` on an opened archive, turning LibTorch's errors (missing entries, wrong types) into
// an IoError and sdegen's (layout mismatches) into an InvalidArgument, both naming the file.
template <typename Read>
void read_archive(torch::serialize::InputArchive& archive, const fs::path& file, Read&& read) {
  try {
    read(archive);
  } catch (const c10::Error& e) {
    throw corrupt(file, first_line(e.what_without_backtrace()));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("checkpoint '" + file.string() + "': " + e.what());
  }
}

TensorPairs read_model(const fs::path& dir, const nlohmann::json& config, const GenerativeModel& model) {
  const fs::path file = dir / "model.pt";
  auto archive = open_archive(file, config, device_of(model));
  TensorPairs tensors;
  const StoredTensorCheck check{"the checkpoint", "the model", [&](const std::string& why) { return corrupt(file, why); }};
  read_archive(archive, file, [&](auto& a) { read_module_tensors(a, model, tensors, check); });
  return tensors;
}

// An Ema-layout archive (ema.pt, best.pt) read into a fresh Ema of the model's layout.
Ema read_ema(const fs::path& file, const nlohmann::json& config, const GenerativeModel& model) {
  auto archive = open_archive(file, config, device_of(model));
  Ema ema(model, 0.5);
  read_archive(archive, file, [&](auto& a) { ema.load(a); });
  const std::string bad = ema.first_non_finite();
  if (!bad.empty()) throw corrupt(file, "'" + bad + "' holds NaN or infinite values");
  return ema;
}

const nlohmann::json& require(const nlohmann::json& j, const std::string& key, const fs::path& file,
                              bool (nlohmann::json::*is)() const noexcept, const char* expected) {
  const auto it = j.find(key);
  if (it == j.end()) throw IoError("checkpoint '" + file.string() + "' has no '" + key + "' key");
  if (!((*it).*is)())
    throw IoError("checkpoint '" + file.string() + "': '" + key + "' must be " + expected + ", got " +
                  it->dump());
  return *it;
}

fs::path existing_checkpoint(const std::string& out_dir) {
  const std::string dir = find_checkpoint(out_dir);
  if (dir.empty())
    throw IoError("no checkpoint in '" + out_dir + "' (expected the directory '" + checkpoint_dir(out_dir) +
                  "')");
  return dir;
}

}  // namespace

nlohmann::json parse_checkpoint_config(const std::string& text, const std::string& path) {
  const fs::path file(path);
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw corrupt(file, e.what());
  }
  if (!config.is_object()) throw corrupt(file, "expected a JSON object");
  const nlohmann::json format = require(config, "format", file, &nlohmann::json::is_string, "a string");
  if (format != kFormat) throw corrupt(file, "'format' is " + format.dump() + ", not \"" + kFormat + "\"");
  const nlohmann::json version = require(config, "version", file, &nlohmann::json::is_number_integer, "an integer");
  if (version != kVersion)
    throw IoError("checkpoint '" + file.string() + "' has format version " + version.dump() +
                  "; this build reads version " + std::to_string(kVersion));
  require(config, "step", file, &nlohmann::json::is_number_integer, "an integer");
  require(config, "seconds", file, &nlohmann::json::is_number, "a number");
  require(config, "kind", file, &nlohmann::json::is_string, "a string");
  require(config, "dim", file, &nlohmann::json::is_number_integer, "an integer");
  require(config, "ema", file, &nlohmann::json::is_boolean, "true or false");
  require(config, "model", file, &nlohmann::json::is_object, "an object");
  require(config, "extra", file, &nlohmann::json::is_object, "an object");
  try {
    train_options_from_json(require(config, "train", file, &nlohmann::json::is_object, "an object"));
    if (config.contains("files")) {
      // Copies, not references: GCC 14 takes a reference returned past require's temporary key
      // for a dangling one (a false alarm, but a warning on every build there).
      const nlohmann::json files = require(config, "files", file, &nlohmann::json::is_object, "an object");
      for (const auto& item : files.items()) digest_from_json(item.value());
    }
    if (config.contains("best")) {
      const nlohmann::json best = require(config, "best", file, &nlohmann::json::is_object, "an object");
      require(best, "step", file, &nlohmann::json::is_number_integer, "an integer");
      require(best, "metric", file, &nlohmann::json::is_string, "a string");
      require(best, "value", file, &nlohmann::json::is_number, "a number");
      require(best, "stale", file, &nlohmann::json::is_number_integer, "an integer");
    }
  } catch (const InvalidArgument& e) {
    throw corrupt(file, e.what());
  }
  return config;
}

namespace {

// config.json of the checkpoint directory `dir`, checked as load_checkpoint_config describes.
nlohmann::json read_config(const fs::path& dir) {
  const fs::path file = dir / "config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("checkpoint file '" + file.string() + "' is missing or unreadable");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_checkpoint_config(text.str(), file.string());
}

// A stored model configuration as this version reads it: options added since the checkpoint was
// written (such as the flow's coupling) take their defaults, which reproduce the older behaviour.
// Null when it does not make a model. Building the model draws initial weights; the default
// generator's state is put back so that reading a checkpoint draws nothing.
nlohmann::json as_read_now(const nlohmann::json& stored) {
  const torch::Tensor state = default_generator_state();
  nlohmann::json config;
  try {
    config = make_model(stored)->config();
  } catch (const std::exception&) {
    config = nullptr;
  }
  set_default_generator_state(state);
  return config;
}

// A plain file name that is not one of the checkpoint's own files.
void check_attachment_name(const std::string& name) {
  static const std::vector<std::string> reserved = {"config.json", "model.pt", "ema.pt", "best.pt", "optimizer.pt",
                                                    "rng.pt"};
  const bool plain = !name.empty() && name[0] != '.' &&
                     name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                         std::string::npos;
  SDEGEN_CHECK(plain && std::find(reserved.begin(), reserved.end(), name) == reserved.end(),
               "checkpoint: an attachment needs a plain file name other than the checkpoint's own files, got '",
               name, "'");
}

}  // namespace

std::string checkpoint_dir(const std::string& out_dir) { return (fs::path(out_dir) / "checkpoint").string(); }

std::string find_checkpoint(const std::string& out_dir) {
  for (const char* name : {"checkpoint", "checkpoint.old"}) {
    const fs::path dir = fs::path(out_dir) / name;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return dir.string();
  }
  return "";
}

std::string training_state_problem(const TrainingState& state) {
  for (const auto& p : state.model.named_parameters())
    if (!all_finite(p.value())) return "parameter '" + p.key() + "' holds NaN or infinite values";
  for (const auto& b : state.model.named_buffers())
    if (!all_finite(b.value())) return "buffer '" + b.key() + "' holds NaN or infinite values";
  if (state.ema)
    if (const std::string bad = state.ema->first_non_finite(); !bad.empty())
      return "the moving average of '" + bad + "' holds NaN or infinite values";
  if (state.best && state.best->weights)
    if (const std::string bad = state.best->weights->first_non_finite(); !bad.empty())
      return "the best weights' '" + bad + "' holds NaN or infinite values";
  return optimizer_state_problem(state.optimizer);
}

void save_checkpoint(const std::string& out_dir, const TrainingState& state, const CheckpointMeta& meta) {
  const fs::path out(out_dir), final_dir = out / "checkpoint", tmp = out / "checkpoint.tmp",
                              old = out / "checkpoint.old";
  if (const std::string problem = training_state_problem(state); !problem.empty())
    throw NumericError("not saving the checkpoint of step " + std::to_string(meta.step) + ": " + problem);
  SDEGEN_CHECK(meta.extra.is_object(), "checkpoint: the extra configuration must be a JSON object, got ",
               meta.extra.dump());
  const bool keeps_best = state.best && state.best->weights;
  for (const auto& item : meta.attachments) check_attachment_name(item.first);
  nlohmann::json config = {{"format", kFormat},
                           {"version", kVersion},
                           {"step", meta.step},
                           {"seconds", meta.seconds},
                           {"kind", state.model.kind()},
                           {"dim", state.model.dim()},
                           {"ema", state.ema != nullptr},
                           {"model", state.model.config()},
                           {"train", to_json(meta.options)},
                           {"extra", meta.extra}};
  if (keeps_best)
    config["best"] = {{"step", state.best->step},
                      {"metric", state.best->metric},
                      {"value", state.best->value},
                      {"stale", state.best->stale}};
  const std::string bad = non_finite_json_path(config);
  SDEGEN_CHECK(bad.empty(), "checkpoint: the configuration's '", bad,
               "' is not a finite number, which JSON cannot store; not saving");
  try {
    fs::create_directories(out);
    fs::remove_all(tmp);
    fs::create_directory(tmp);
    std::vector<std::string> files = {"model.pt", "optimizer.pt", "rng.pt"};
    write_archive(tmp / "model.pt", [&](auto& a) { state.model.save(a); });
    if (state.ema) {
      write_archive(tmp / "ema.pt", [&](auto& a) { state.ema->save(a); });
      files.push_back("ema.pt");
    }
    if (keeps_best) {
      write_archive(tmp / "best.pt", [&](auto& a) { state.best->weights->save(a); });
      files.push_back("best.pt");
    }
    write_archive(tmp / "optimizer.pt", [&](auto& a) { state.optimizer.save(a); });
    write_archive(tmp / "rng.pt", [&](auto& a) {
      torch::serialize::OutputArchive batches;
      state.batches.save(batches);
      a.write("batches", batches);
      a.write("torch_default_cpu", default_generator_state(), /*is_buffer=*/true);
    });
    for (const auto& [name, bytes] : meta.attachments) {
      std::ofstream out(tmp / name, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out.flush()) throw IoError("cannot write checkpoint file '" + (tmp / name).string() + "'");
      files.push_back(name);
    }
    config["files"] = nlohmann::json::object();
    for (const auto& name : files) config["files"][name] = digest_to_json(file_digest((tmp / name).string()));
    write_file_atomic((tmp / "config.json").string(), config.dump(2) + "\n");
    // Read it back: what will be loaded must be what was meant.
    if (read_config(tmp) != config)
      throw IoError("cannot write checkpoint '" + final_dir.string() + "': config.json did not read back as written");
    // Keep a complete checkpoint on disk at every moment: old aside, new in, old out.
    if (fs::exists(final_dir)) {
      fs::remove_all(old);
      fs::rename(final_dir, old);
    }
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } catch (const fs::filesystem_error& e) {
    throw IoError("cannot write checkpoint '" + final_dir.string() + "': " + e.what());
  } catch (const c10::Error& e) {
    throw IoError("cannot write checkpoint '" + final_dir.string() + "': " +
                  first_line(e.what_without_backtrace()));
  }
}

nlohmann::json load_checkpoint_config(const std::string& out_dir) { return read_config(existing_checkpoint(out_dir)); }

void check_checkpoint_matches(const nlohmann::json& config, const GenerativeModel& model,
                              const std::string& where) {
  const std::string kind = config.at("kind").get<std::string>();
  const int64_t dim = config.at("dim").get<int64_t>();
  SDEGEN_CHECK(kind == model.kind(), "checkpoint '", where, "' holds a '", kind,
               "' model, this run has a '", model.kind(), "' model");
  SDEGEN_CHECK(dim == model.dim(), "checkpoint '", where, "' was trained on ", dim,
               "-D data, this run has ", model.dim(), "-D");
  const nlohmann::json mine = model.config();
  SDEGEN_CHECK(config.at("model") == mine || as_read_now(config.at("model")) == mine, "checkpoint '", where,
               "' holds a model configured as ", config.at("model").dump(), ", this run's is ",
               mine.dump());
}

nlohmann::json load_checkpoint(const std::string& out_dir, const TrainingState& state) {
  const fs::path dir = existing_checkpoint(out_dir);
  nlohmann::json config = read_config(dir);
  check_checkpoint_matches(config, state.model, dir.string());
  if (config.at("ema").get<bool>() != (state.ema != nullptr))
    throw InvalidArgument("checkpoint '" + dir.string() + "' was trained " +
                          (state.ema ? "without" : "with") + " weight averaging, this run " +
                          (state.ema ? "has it on" : "has it off") + " (ema_decay)");

  // Read and check everything into copies before changing anything.
  const TensorPairs model_tensors = read_model(dir, config, state.model);
  std::optional<Ema> ema, best;
  if (state.ema) ema.emplace(read_ema(dir / "ema.pt", config, state.model));  // decay and warm-up included
  if (state.best && config.contains("best")) best.emplace(read_ema(dir / "best.pt", config, state.model));
  torch::Tensor generator_state;
  BatchSampler batches = state.batches;
  {
    const fs::path file = dir / "rng.pt";
    auto archive = open_archive(file, config);
    read_archive(archive, file, [&](auto& a) {
      a.read("torch_default_cpu", generator_state, /*is_buffer=*/true);
      torch::serialize::InputArchive sub;
      a.read("batches", sub);
      batches.load(sub);
    });
  }
  {
    // torch::optim loads into the optimiser itself: keep its state to put back if the loaded
    // one is malformed.
    const fs::path file = dir / "optimizer.pt";
    auto archive = open_archive(file, config, device_of(state.model));
    std::ostringstream kept_bytes;
    {
      torch::serialize::OutputArchive kept;
      state.optimizer.save(kept);
      kept.save_to(kept_bytes);
    }
    auto put_back = [&] {
      state.optimizer.state().clear();  // load() only adds entries: drop the ones just read
      std::istringstream in(kept_bytes.str());
      torch::serialize::InputArchive kept;
      kept.load_from(in);
      state.optimizer.load(kept);
    };
    try {
      read_archive(archive, file, [&](auto& a) { state.optimizer.load(a); });
    } catch (...) {
      put_back();
      throw;
    }
    if (const std::string problem = optimizer_state_problem(state.optimizer); !problem.empty()) {
      put_back();
      throw corrupt(file, problem);
    }
  }

  commit_tensors(model_tensors);
  if (state.ema) *state.ema = std::move(*ema);
  if (state.best) {
    *state.best = BestWeights();
    if (best) {
      const nlohmann::json& record = config.at("best");
      state.best->weights = std::move(best);
      state.best->step = record.at("step").get<int64_t>();
      state.best->metric = record.at("metric").get<std::string>();
      state.best->value = record.at("value").get<double>();
      state.best->stale = record.at("stale").get<int64_t>();
    }
  }
  state.batches = batches;
  set_default_generator_state(generator_state);
  return config;
}

void load_weights(const std::string& out_dir, GenerativeModel& model, Weights which) {
  const fs::path dir = existing_checkpoint(out_dir);
  const nlohmann::json config = read_config(dir);
  check_checkpoint_matches(config, model, dir.string());
  if (which == Weights::kBest && config.contains("best")) {
    read_ema(dir / "best.pt", config, model).copy_to(model);
    return;
  }
  if (which != Weights::kLast && config.at("ema").get<bool>()) {
    read_ema(dir / "ema.pt", config, model).copy_to(model);
    return;
  }
  commit_tensors(read_model(dir, config, model));
}

std::string read_checkpoint_attachment(const std::string& out_dir, const std::string& name) {
  check_attachment_name(name);
  const fs::path dir = existing_checkpoint(out_dir);
  const nlohmann::json config = read_config(dir);
  const fs::path file = dir / name;
  if (!config.contains("files") || !config.at("files").contains(name))
    throw IoError("checkpoint '" + dir.string() + "' holds no '" + name + "'");
  verify_file(file, config);
  std::ifstream in(file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) throw IoError("checkpoint file '" + file.string() + "' is unreadable");
  return bytes.str();
}

}  // namespace sdegen
