#include "sdegen/data/mixture.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "sdegen/core/check.h"

namespace sdegen {

void GaussianMixture::validate() const {
  SDEGEN_CHECK(weights.defined() && means.defined() && stds.defined(),
               "mixture needs weights, means and stds");
  SDEGEN_CHECK(weights.dim() == 1 && weights.size(0) > 0, "mixture weights must be a non-empty list, got shape ",
               weights.sizes());
  const int64_t k = weights.size(0);
  SDEGEN_CHECK(means.dim() == 2 && means.size(0) == k && means.size(1) > 0,
               "mixture means must be ", k, " lists of equal, non-zero length (one per weight), got shape ",
               means.sizes());
  SDEGEN_CHECK(stds.sizes() == means.sizes(), "mixture stds must have the shape of the means ",
               means.sizes(), ", got ", stds.sizes());
  SDEGEN_CHECK(torch::isfinite(weights).all().item<bool>() && torch::isfinite(means).all().item<bool>() &&
                   torch::isfinite(stds).all().item<bool>(),
               "mixture weights, means and stds must be finite numbers");
  for (int64_t k = 0; k < weights.size(0); ++k)
    SDEGEN_CHECK(weights[k].item<double>() > 0, "mixture weights must be positive; weight ", k + 1, " of ",
                 weights.size(0), " is ", weights[k].item<double>());
  const double total = weights.sum().item<double>();
  SDEGEN_CHECK(std::abs(total - 1.0) < 1e-6, "mixture weights must sum to 1, they sum to ", total);
  SDEGEN_CHECK((stds > 0).all().item<bool>(), "mixture stds must be positive, got min ",
               stds.min().item<double>());
}

torch::Tensor GaussianMixture::sample(int64_t n) const {
  SDEGEN_CHECK(n >= 0, "number of samples must be >= 0, got ", n);
  const torch::Tensor k = torch::multinomial(weights, n, /*replacement=*/true);
  return means.index_select(0, k) + stds.index_select(0, k) * torch::randn({n, dim()}, means.options());
}

torch::Tensor GaussianMixture::component_log_prob(const torch::Tensor& x) const {
  SDEGEN_CHECK(x.dim() == 2 && x.size(1) == dim(), "points must have shape [n, ", dim(), "], got ",
               x.sizes());
  const torch::Tensor z = (x.unsqueeze(1) - means.unsqueeze(0)) / stds.unsqueeze(0);  // [n, K, d]
  const double log_2pi = std::log(2.0 * M_PI);
  const torch::Tensor log_n = (-0.5 * z * z - torch::log(stds).unsqueeze(0) - 0.5 * log_2pi).sum(-1);
  return log_n + torch::log(weights).unsqueeze(0);
}

torch::Tensor GaussianMixture::log_prob(const torch::Tensor& x) const {
  return torch::logsumexp(component_log_prob(x), 1);
}

GaussianMixture make_mixture(const std::vector<double>& weights,
                             const std::vector<std::vector<double>>& means,
                             const std::vector<std::vector<double>>& stds) {
  SDEGEN_CHECK(!means.empty() && means.size() == weights.size() && stds.size() == weights.size(),
               "mixture needs one mean and one std per weight: ", weights.size(), " weights, ",
               means.size(), " means, ", stds.size(), " stds");
  const size_t d = means[0].size();
  auto matrix = [&](const std::vector<std::vector<double>>& rows, const char* what) {
    std::vector<double> flat;
    for (size_t i = 0; i < rows.size(); ++i) {
      SDEGEN_CHECK(rows[i].size() == d, "mixture ", what, "[", i, "] has ", rows[i].size(),
                   " entries, expected ", d);
      flat.insert(flat.end(), rows[i].begin(), rows[i].end());
    }
    return torch::tensor(flat, torch::kDouble).reshape({static_cast<int64_t>(rows.size()),
                                                        static_cast<int64_t>(d)});
  };
  GaussianMixture m{torch::tensor(weights, torch::kDouble), matrix(means, "means"),
                    matrix(stds, "stds")};
  m.validate();
  return m;
}

GaussianMixture load_mixture_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open mixture file '" + path + "'");
  return parse_mixture_json(std::string(std::istreambuf_iterator<char>(in), {}), path);
}

GaussianMixture parse_mixture_json(const std::string& text, const std::string& path) {
  nlohmann::json j;
  try {
    // The whole text: parse() refuses anything after the object, where `in >> j` stops there.
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("mixture file '" + path + "' is not valid JSON: " + e.what());
  }
  try {
    for (const char* key : {"weights", "means", "stds"})
      SDEGEN_CHECK(j.contains(key), "mixture file '", path, "' has no \"", key, "\" field");
    const auto weights = j.at("weights").get<std::vector<double>>();
    const auto means = j.at("means").get<std::vector<std::vector<double>>>();
    const auto stds = j.at("stds").get<std::vector<std::vector<double>>>();
    return make_mixture(weights, means, stds);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("mixture file '" + path + "': expected numbers in \"weights\" and lists of numbers in "
                          "\"means\" and \"stds\": " + e.what());
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    if (msg.find(path) != std::string::npos) throw;
    throw InvalidArgument("mixture file '" + path + "': " + msg);
  }
}

}  // namespace sdegen
