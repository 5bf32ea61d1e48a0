#include "sdegen/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/io/csv.h"

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

torch::serialize::InputArchive open_archive(const fs::path& file) {
  if (!fs::is_regular_file(file))
    throw IoError("checkpoint file '" + file.string() + "' is missing");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string());
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

// The model's tensors as stored by Module::save (one sub-archive per child), paired with the
// model's own, after checking every name, shape and dtype; nothing is copied yet.
using TensorPairs = std::vector<std::pair<torch::Tensor, torch::Tensor>>;  // {model's, stored}

void read_module(torch::serialize::InputArchive& archive, const torch::nn::Module& module,
                 const std::string& prefix, TensorPairs& out) {
  auto take = [&](const std::string& name, const torch::Tensor& mine, bool is_buffer) {
    torch::Tensor stored;
    archive.read(name, stored, is_buffer);
    SDEGEN_CHECK(stored.sizes() == mine.sizes() && stored.scalar_type() == mine.scalar_type(), "'",
                 prefix, name, "' is ", stored.scalar_type(), stored.sizes(), " in the checkpoint but ",
                 mine.scalar_type(), mine.sizes(), " in the model");
    out.emplace_back(mine, stored);
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) take(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) take(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    archive.read(child.key(), sub);
    read_module(sub, *child.value(), prefix + child.key() + ".", out);
  }
}

void commit(const TensorPairs& pairs) {
  torch::NoGradGuard no_grad;
  for (const auto& [mine, stored] : pairs) mine.detach().copy_(stored);
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

std::string checkpoint_dir(const std::string& out_dir) { return (fs::path(out_dir) / "checkpoint").string(); }

std::string find_checkpoint(const std::string& out_dir) {
  for (const char* name : {"checkpoint", "checkpoint.old"}) {
    const fs::path dir = fs::path(out_dir) / name;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return dir.string();
  }
  return "";
}

void save_checkpoint(const std::string& out_dir, const TrainingState& state, const CheckpointMeta& meta) {
  const fs::path out(out_dir), final_dir = out / "checkpoint", tmp = out / "checkpoint.tmp",
                              old = out / "checkpoint.old";
  const nlohmann::json config = {{"format", kFormat},
                                 {"version", kVersion},
                                 {"step", meta.step},
                                 {"seconds", meta.seconds},
                                 {"kind", state.model.kind()},
                                 {"dim", state.model.dim()},
                                 {"ema", state.ema != nullptr},
                                 {"model", state.model.config()},
                                 {"train", to_json(meta.options)},
                                 {"extra", meta.extra}};
  SDEGEN_CHECK(meta.extra.is_object(), "checkpoint: the extra configuration must be a JSON object, got ",
               meta.extra.dump());
  try {
    fs::create_directories(out);
    fs::remove_all(tmp);
    fs::create_directory(tmp);
    write_archive(tmp / "model.pt", [&](auto& a) { state.model.save(a); });
    if (state.ema) write_archive(tmp / "ema.pt", [&](auto& a) { state.ema->save(a); });
    write_archive(tmp / "optimizer.pt", [&](auto& a) { state.optimizer.save(a); });
    write_archive(tmp / "rng.pt", [&](auto& a) {
      torch::serialize::OutputArchive batches;
      state.batches.save(batches);
      a.write("batches", batches);
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      a.write("torch_default_cpu", generator.get_state(), /*is_buffer=*/true);
    });
    write_file_atomic((tmp / "config.json").string(), config.dump(2) + "\n");
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

nlohmann::json load_checkpoint_config(const std::string& out_dir) {
  const fs::path file = existing_checkpoint(out_dir) / "config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("checkpoint file '" + file.string() + "' is missing or unreadable");
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw corrupt(file, e.what());
  }
  if (!config.is_object()) throw corrupt(file, "expected a JSON object");
  const auto& format = require(config, "format", file, &nlohmann::json::is_string, "a string");
  if (format != kFormat) throw corrupt(file, "'format' is " + format.dump() + ", not \"" + kFormat + "\"");
  const auto& version = require(config, "version", file, &nlohmann::json::is_number_integer, "an integer");
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
  } catch (const InvalidArgument& e) {
    throw corrupt(file, e.what());
  }
  return config;
}

void check_checkpoint_matches(const nlohmann::json& config, const GenerativeModel& model,
                              const std::string& where) {
  const std::string kind = config.at("kind").get<std::string>();
  const int64_t dim = config.at("dim").get<int64_t>();
  SDEGEN_CHECK(kind == model.kind(), "checkpoint '", where, "' holds a '", kind,
               "' model, this run has a '", model.kind(), "' model");
  SDEGEN_CHECK(dim == model.dim(), "checkpoint '", where, "' was trained on ", dim,
               "-D data, this run has ", model.dim(), "-D");
  const nlohmann::json mine = model.config();
  SDEGEN_CHECK(config.at("model") == mine, "checkpoint '", where,
               "' holds a model configured as ", config.at("model").dump(), ", this run's is ",
               mine.dump());
}

nlohmann::json load_checkpoint(const std::string& out_dir, const TrainingState& state) {
  const fs::path dir = existing_checkpoint(out_dir);
  nlohmann::json config = load_checkpoint_config(out_dir);
  check_checkpoint_matches(config, state.model, dir.string());
  if (config.at("ema").get<bool>() != (state.ema != nullptr))
    throw InvalidArgument("checkpoint '" + dir.string() + "' was trained " +
                          (state.ema ? "without" : "with") + " weight averaging, this run " +
                          (state.ema ? "has it on" : "has it off") + " (ema_decay)");

  // Open and check everything before changing anything.
  auto model_archive = open_archive(dir / "model.pt");
  auto optimizer_archive = open_archive(dir / "optimizer.pt");
  auto rng_archive = open_archive(dir / "rng.pt");
  TensorPairs model_tensors;
  read_archive(model_archive, dir / "model.pt",
               [&](auto& a) { read_module(a, state.model, "", model_tensors); });
  std::optional<Ema> ema;
  if (state.ema) {
    auto ema_archive = open_archive(dir / "ema.pt");
    ema.emplace(state.model, state.ema->decay(), state.ema->warmup());  // fresh tensors
    read_archive(ema_archive, dir / "ema.pt", [&](auto& a) { ema->load(a); });
  }
  torch::Tensor generator_state;
  read_archive(rng_archive, dir / "rng.pt", [&](auto& a) {
    a.read("torch_default_cpu", generator_state, /*is_buffer=*/true);
    torch::serialize::InputArchive batches;
    a.read("batches", batches);
    state.batches.load(batches);
  });
  read_archive(optimizer_archive, dir / "optimizer.pt", [&](auto& a) { state.optimizer.load(a); });

  commit(model_tensors);
  if (state.ema) *state.ema = std::move(*ema);
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(generator_state);
  return config;
}

void load_weights(const std::string& out_dir, GenerativeModel& model, bool use_ema) {
  const fs::path dir = existing_checkpoint(out_dir);
  const nlohmann::json config = load_checkpoint_config(out_dir);
  check_checkpoint_matches(config, model, dir.string());
  if (use_ema && config.at("ema").get<bool>()) {
    auto archive = open_archive(dir / "ema.pt");
    Ema ema(model, 0.5);
    read_archive(archive, dir / "ema.pt", [&](auto& a) { ema.load(a); });
    ema.copy_to(model);
    return;
  }
  auto archive = open_archive(dir / "model.pt");
  TensorPairs tensors;
  read_archive(archive, dir / "model.pt", [&](auto& a) { read_module(a, model, "", tensors); });
  commit(tensors);
}

}  // namespace sdegen
