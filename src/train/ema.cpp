#include "sdegen/train/ema.h"

#include <algorithm>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

namespace {

std::string join_lines(const std::vector<std::string>& names) { return join(names, "\n"); }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void copy_all(const std::vector<torch::Tensor>& from, const std::vector<torch::Tensor>& to) {
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
}

// Reads the tensors "<prefix>/<i>" into `into`, all or none: shapes and dtypes are checked
// before anything is copied.
void read_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                  const std::vector<std::string>& names, std::vector<torch::Tensor>& into) {
  std::vector<torch::Tensor> read(into.size());
  for (size_t i = 0; i < into.size(); ++i) {
    archive.read(prefix + "/" + std::to_string(i), read[i]);
    SDEGEN_CHECK(read[i].sizes() == into[i].sizes() && read[i].scalar_type() == into[i].scalar_type(),
                 "EMA state: '", names[i], "' is ", read[i].scalar_type(), read[i].sizes(),
                 " in the archive but ", into[i].scalar_type(), into[i].sizes(), " in the model");
  }
  copy_all(read, into);
}

}  // namespace

Ema::Ema(const torch::nn::Module& module, double decay, bool warmup) : decay_(decay), warmup_(warmup) {
  SDEGEN_CHECK(decay >= 0 && decay < 1, "EMA decay must be in [0, 1), got ", decay);
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    param_names_.push_back(item.key());
    params_.push_back(item.value().detach().clone());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    buffer_names_.push_back(item.key());
    buffers_.push_back(item.value().detach().clone());
  }
}

double Ema::next_decay() const {
  if (!warmup_) return decay_;
  const double n = static_cast<double>(updates_);
  return std::min(decay_, (1.0 + n) / (10.0 + n));
}

void Ema::check_same_layout(const torch::nn::Module& module, const char* what) const {
  const auto params = module.named_parameters(true);
  const auto buffers = module.named_buffers(true);
  SDEGEN_CHECK(params.size() == params_.size() && buffers.size() == buffers_.size(), "Ema::", what,
               ": the module has ", params.size(), " parameters and ", buffers.size(),
               " buffers, the average ", params_.size(), " and ", buffers_.size());
  for (size_t i = 0; i < params_.size(); ++i)
    SDEGEN_CHECK(params[i].key() == param_names_[i] && params[i].value().sizes() == params_[i].sizes(),
                 "Ema::", what, ": parameter ", i, " is '", params[i].key(), "' ",
                 params[i].value().sizes(), " in the module but '", param_names_[i], "' ",
                 params_[i].sizes(), " in the average");
  for (size_t i = 0; i < buffers_.size(); ++i)
    SDEGEN_CHECK(buffers[i].key() == buffer_names_[i] && buffers[i].value().sizes() == buffers_[i].sizes(),
                 "Ema::", what, ": buffer ", i, " is '", buffers[i].key(), "' in the module but '",
                 buffer_names_[i], "' in the average");
}

void Ema::update(const torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  const double d = next_decay();
  const auto params = module.parameters(true);
  const auto buffers = module.buffers(true);
  // Called every step: compare shapes here (cheap), names only when they differ.
  bool same = params.size() == params_.size() && buffers.size() == buffers_.size();
  for (size_t i = 0; same && i < params_.size(); ++i) same = params[i].sizes() == params_[i].sizes();
  for (size_t i = 0; same && i < buffers_.size(); ++i) same = buffers[i].sizes() == buffers_[i].sizes();
  if (!same) check_same_layout(module, "update");
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& p = params[i];
    torch::Tensor& avg = params_[i];
    if (is_raw_double(p) && is_raw_double(avg)) {
      // avg.mul_(d).add_(p, 1 - d) in one pass.
      const double* src = p.data_ptr<double>();
      double* dst = avg.data_ptr<double>();
      for (int64_t j = 0, n = p.numel(); j < n; ++j) dst[j] = dst[j] * d + (1.0 - d) * src[j];
    } else {
      avg.mul_(d).add_(p.detach(), 1.0 - d);
    }
  }
  for (size_t i = 0; i < buffers_.size(); ++i) buffers_[i].copy_(buffers[i]);
  ++updates_;
}

void Ema::copy_to(torch::nn::Module& module) const {
  check_same_layout(module, "copy_to");
  torch::NoGradGuard no_grad;
  copy_all(params_, module.parameters(true));
  copy_all(buffers_, module.buffers(true));
}

void Ema::swap(torch::nn::Module& module) {
  check_same_layout(module, "swap");
  torch::NoGradGuard no_grad;
  auto exchange = [](const std::vector<torch::Tensor>& mine, const std::vector<torch::Tensor>& theirs) {
    for (size_t i = 0; i < mine.size(); ++i) {
      const torch::Tensor keep = theirs[i].detach().clone();
      theirs[i].detach().copy_(mine[i]);
      mine[i].copy_(keep);
    }
  };
  exchange(params_, module.parameters(true));
  exchange(buffers_, module.buffers(true));
}

const torch::Tensor& Ema::average(const std::string& name) const {
  const auto it = std::find(param_names_.begin(), param_names_.end(), name);
  SDEGEN_CHECK(it != param_names_.end(), "Ema: no parameter named '", name, "'; valid: ",
               join(param_names_));
  return params_[static_cast<size_t>(it - param_names_.begin())];
}

std::string Ema::first_non_finite() const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (!all_finite(params_[i])) return param_names_[i];
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (!all_finite(buffers_[i])) return buffer_names_[i];
  return "";
}

void Ema::save(torch::serialize::OutputArchive& archive) const {
  archive.write("decay", c10::IValue(decay_));
  archive.write("warmup", c10::IValue(warmup_));
  archive.write("updates", c10::IValue(updates_));
  archive.write("parameter_names", c10::IValue(join_lines(param_names_)));
  archive.write("buffer_names", c10::IValue(join_lines(buffer_names_)));
  for (size_t i = 0; i < params_.size(); ++i) archive.write("parameter/" + std::to_string(i), params_[i]);
  for (size_t i = 0; i < buffers_.size(); ++i)
    archive.write("buffer/" + std::to_string(i), buffers_[i], /*is_buffer=*/true);
}

void Ema::load(torch::serialize::InputArchive& archive) {
  c10::IValue decay, warmup, updates, param_names, buffer_names;
  archive.read("decay", decay);
  archive.read("warmup", warmup);
  archive.read("updates", updates);
  archive.read("parameter_names", param_names);
  archive.read("buffer_names", buffer_names);
  SDEGEN_CHECK(decay.isDouble() && warmup.isBool() && updates.isInt() && param_names.isString() &&
                   buffer_names.isString(),
               "EMA state: an entry has the wrong type");
  const auto saved_params = split_lines(param_names.toStringRef());
  const auto saved_buffers = split_lines(buffer_names.toStringRef());
  SDEGEN_CHECK(saved_params == param_names_, "EMA state: the archive holds parameters [",
               join(saved_params), "] but the model has [", join(param_names_), "]");
  SDEGEN_CHECK(saved_buffers == buffer_names_, "EMA state: the archive holds buffers [",
               join(saved_buffers), "] but the model has [", join(buffer_names_), "]");
  SDEGEN_CHECK(decay.toDouble() >= 0 && decay.toDouble() < 1 && updates.toInt() >= 0,
               "EMA state: decay ", decay.toDouble(), " or update count ", updates.toInt(),
               " out of range");
  torch::NoGradGuard no_grad;
  read_tensors(archive, "parameter", param_names_, params_);
  read_tensors(archive, "buffer", buffer_names_, buffers_);
  decay_ = decay.toDouble();
  warmup_ = warmup.toBool();
  updates_ = updates.toInt();
}

}  // namespace sdegen
