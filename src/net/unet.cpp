#include "sdegen/net/unet.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/json_fields.h"

namespace sdegen {
namespace {

// The sinusoidal features' highest angular frequency per unit of t: t in [0, 1] then spans the
// same ~1000 radians as DDPM's integer steps 0 ... 999 at its highest frequency.
constexpr double kMaxTimeFrequency = 1000.0;

std::string list(const std::vector<int64_t>& values) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < values.size(); ++i) s << (i ? ", " : "") << values[i];
  s << "]";
  return s.str();
}

// The height of each level: the image's, halved between levels.
std::vector<int64_t> level_heights(const UNetOptions& o) {
  std::vector<int64_t> heights;
  for (int64_t i = 0, h = o.height(); i < o.levels(); ++i, h /= 2) heights.push_back(h);
  return heights;
}

bool has_attention(const UNetOptions& o, int64_t level_height) {
  const auto& r = o.attention_resolutions();
  return std::find(r.begin(), r.end(), level_height) != r.end();
}

}  // namespace

void check_unet_options(const UNetOptions& o) {
  SDEGEN_CHECK(o.in_channels() >= 1, "UNet: in_channels must be >= 1, got ", o.in_channels());
  SDEGEN_CHECK(o.height() >= 1 && o.width() >= 1, "UNet: height and width must be >= 1, got ", o.height(), "x",
               o.width());
  SDEGEN_CHECK(o.out_channels() >= 0, "UNet: out_channels must be >= 0 (0 means in_channels), got ", o.out_channels());
  SDEGEN_CHECK(o.base_channels() >= 2 && o.base_channels() % 2 == 0,
               "UNet: base_channels must be even and >= 2 (the time features are base_channels / 2 sin/cos "
               "pairs), got ",
               o.base_channels());
  SDEGEN_CHECK(o.levels() >= 1, "UNet: channel_mult needs one entry per level, got none");
  for (const int64_t m : o.channel_mult())
    SDEGEN_CHECK(m >= 1, "UNet: channel_mult entries must be >= 1, got ", list(o.channel_mult()));
  SDEGEN_CHECK(o.blocks_per_level() >= 1, "UNet: blocks_per_level must be >= 1, got ", o.blocks_per_level());
  SDEGEN_CHECK(o.attention_heads() >= 1, "UNet: attention_heads must be >= 1, got ", o.attention_heads());
  SDEGEN_CHECK(std::isfinite(o.dropout()) && o.dropout() >= 0.0 && o.dropout() < 1.0,
               "UNet: dropout must be in [0, 1), got ", o.dropout());
  SDEGEN_CHECK(o.groups() >= 1, "UNet: groups must be >= 1, got ", o.groups());
  SDEGEN_CHECK(o.num_classes() >= 0, "UNet: num_classes must be >= 0 (0 means unconditional), got ", o.num_classes());
  SDEGEN_CHECK(o.time_embedding_dim() >= 0, "UNet: time_embedding_dim must be >= 0 (0 means 4 * base_channels), got ",
               o.time_embedding_dim());

  const int64_t halvings = o.levels() - 1, factor = int64_t{1} << std::min<int64_t>(halvings, 62);
  SDEGEN_CHECK(halvings < 62 && o.height() % factor == 0 && o.width() % factor == 0, "UNet: a ", o.height(), "x",
               o.width(), " image cannot be halved ", halvings, " times (", o.levels(), " levels in channel_mult ",
               list(o.channel_mult()), "): height and width must be divisible by ", factor);
  const std::vector<int64_t> heights = level_heights(o);
  for (int64_t i = 0; i < o.levels(); ++i) {
    const int64_t channels = o.base_channels() * o.channel_mult()[i];
    SDEGEN_CHECK(channels % o.groups() == 0, "UNet: level ", i, " has ", channels, " channels (base_channels ",
                 o.base_channels(), " x channel_mult ", o.channel_mult()[i], "), not divisible by groups = ",
                 o.groups());
    // The middle block's attention runs at the last level.
    const bool attention = has_attention(o, heights[i]) || i == o.levels() - 1;
    SDEGEN_CHECK(!attention || channels % o.attention_heads() == 0, "UNet: level ", i, " (", heights[i], "x",
                 o.width() >> i, ") has attention over ", channels, " channels, not divisible by attention_heads = ",
                 o.attention_heads());
  }
  for (const int64_t r : o.attention_resolutions())
    SDEGEN_CHECK(std::find(heights.begin(), heights.end(), r) != heights.end(), "UNet: attention resolution ", r,
                 " matches no level; the levels' heights are ", list(heights));
}

UNetImpl::UNetImpl(const UNetOptions& options_) : options(options_) {
  check_unet_options(options);
  const int64_t base = options.base_channels(), emb_dim = options.resolved_time_embedding_dim();
  const int64_t heads = options.attention_heads(), groups = options.groups();
  const double dropout = options.dropout();

  time_features = register_module(
      "time_features", SinusoidalTimeEmbedding(SinusoidalTimeEmbeddingOptions(base).max_frequency(kMaxTimeFrequency)));
  time_hidden = register_module("time_hidden", torch::nn::Linear(base, emb_dim));
  time_output = register_module("time_output", torch::nn::Linear(emb_dim, emb_dim));
  if (options.num_classes() > 0)
    class_embedding = register_module("class_embedding", torch::nn::Embedding(options.num_classes() + 1, emb_dim));
  input_conv = register_module(
      "input_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(), base, 3).padding(1)));

  using Resample = UNetStageImpl::Resample;
  down = register_module("down", torch::nn::ModuleList());
  up = register_module("up", torch::nn::ModuleList());
  auto add = [&](torch::nn::ModuleList& list, std::vector<UNetStage>& stages, const UNetStageImpl::Spec& spec) {
    UNetStage stage(spec, emb_dim, heads, groups, dropout);
    list->push_back(stage);
    stages.push_back(stage);
  };
  // The channels of every activation the down path pushes, the input conv's first.
  std::vector<int64_t> skips{base};
  const std::vector<int64_t> heights = level_heights(options);
  int64_t channels = base;
  for (int64_t i = 0; i < options.levels(); ++i) {
    const int64_t out = base * options.channel_mult()[i];
    for (int64_t b = 0; b < options.blocks_per_level(); ++b) {
      add(down, down_stages_, {channels, out, has_attention(options, heights[i])});
      skips.push_back(channels = out);
    }
    if (i + 1 < options.levels()) {
      add(down, down_stages_, {0, 0, false, Resample::Down, channels});
      skips.push_back(channels);
    }
  }
  middle_res1 = register_module("middle_res1", UNetResBlock(channels, channels, emb_dim, groups, dropout));
  middle_attention = register_module("middle_attention", UNetAttentionBlock(channels, heads, groups));
  middle_res2 = register_module("middle_res2", UNetResBlock(channels, channels, emb_dim, groups, dropout));
  // One more block per level than on the way down: the level's blocks and its resampling each
  // pushed an activation.
  for (int64_t i = options.levels() - 1; i >= 0; --i) {
    const int64_t out = base * options.channel_mult()[i];
    for (int64_t b = 0; b <= options.blocks_per_level(); ++b) {
      const bool upsample = i > 0 && b == options.blocks_per_level();
      add(up, up_stages_,
          {channels + skips.back(), out, has_attention(options, heights[i]), upsample ? Resample::Up : Resample::None,
           out});
      skips.pop_back();
      channels = out;
    }
  }
  output_norm = register_module("output_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels)));
  output_conv = register_module(
      "output_conv",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, options.resolved_out_channels(), 3).padding(1)));
  torch::NoGradGuard no_grad;
  output_conv->weight.zero_();
  output_conv->bias.zero_();
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition) {
  check_network_inputs("UNet", shape(), options.num_classes(), x, t, condition);
  const int64_t batch = x.size(0);
  const torch::Tensor times = (t.dim() == 0 ? t.expand({batch}) : t).to(x.dtype());
  torch::Tensor emb = time_output->forward(torch::silu(time_hidden->forward(time_features->forward(times))));
  if (class_embedding)
    emb = emb + class_embedding->forward(label_rows(condition, options.num_classes(), batch, x.device()));
  // Every block's projection of the embedding starts with a SiLU: applied once here.
  emb = torch::silu(emb);

  torch::Tensor h = input_conv->forward(x);
  std::vector<torch::Tensor> skips{h};
  for (auto& stage : down_stages_) skips.push_back(h = stage->forward(h, emb));
  h = middle_res2->forward(middle_attention->forward(middle_res1->forward(h, emb)), emb);
  for (auto& stage : up_stages_) {
    // The skip and h are released before the stage runs; without autograd nothing else holds
    // them (peak memory of a guided call on 2x250 images at base 32: 1373 MB kept, 1193 MB
    // released, measured with bench/unet.cpp).
    torch::Tensor input = torch::cat({h, skips.back()}, 1);
    skips.pop_back();
    h = torch::Tensor();
    h = stage->forward(input, emb);
  }
  return output_conv->forward(torch::silu(output_norm->forward(h)));
}

nlohmann::json UNetImpl::config() const { return to_json(options); }

void UNetImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::UNet(in_channels=" << options.in_channels() << ", size=" << options.height() << "x"
         << options.width() << ", base_channels=" << options.base_channels()
         << ", channel_mult=" << list(options.channel_mult()) << ", blocks_per_level=" << options.blocks_per_level()
         << ", attention_resolutions=" << list(options.attention_resolutions());
  if (options.num_classes() > 0) stream << ", num_classes=" << options.num_classes();
  stream << ")";
}

// ---- options <-> JSON ----

namespace {

const std::vector<std::string>& unet_json_keys() {
  static const std::vector<std::string> keys = {
      "type",           "in_channels",     "height",  "width",       "out_channels",      "base_channels",
      "channel_mult",   "blocks_per_level", "attention_resolutions",   "attention_heads",   "dropout",
      "groups",         "num_classes",     "time_embedding_dim"};
  return keys;
}

}  // namespace

nlohmann::json to_json(const UNetOptions& o) {
  return {{"type", "unet"},
          {"in_channels", o.in_channels()},
          {"height", o.height()},
          {"width", o.width()},
          {"out_channels", o.out_channels()},
          {"base_channels", o.base_channels()},
          {"channel_mult", o.channel_mult()},
          {"blocks_per_level", o.blocks_per_level()},
          {"attention_resolutions", o.attention_resolutions()},
          {"attention_heads", o.attention_heads()},
          {"dropout", o.dropout()},
          {"groups", o.groups()},
          {"num_classes", o.num_classes()},
          {"time_embedding_dim", o.time_embedding_dim()}};
}

UNetOptions unet_options_from_json(const nlohmann::json& j) {
  const JsonFields f(j, "UNet", unet_json_keys());
  f.expect_type("unet");
  UNetOptions o = UNetOptions(f.integer("in_channels"), f.integer("height"), f.integer("width"))
                      .out_channels(f.integer("out_channels"))
                      .base_channels(f.integer("base_channels"))
                      .channel_mult(f.integers("channel_mult"))
                      .blocks_per_level(f.integer("blocks_per_level"))
                      .attention_resolutions(f.integers("attention_resolutions"))
                      .attention_heads(f.integer("attention_heads"))
                      .dropout(f.number("dropout"))
                      .groups(f.integer("groups"))
                      .num_classes(f.integer("num_classes"))
                      .time_embedding_dim(f.integer("time_embedding_dim"));
  check_unet_options(o);
  return o;
}

}  // namespace sdegen
