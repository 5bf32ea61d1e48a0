#include "sdegen/net/autoencoder.h"

#include <nlohmann/json.hpp>

#include "sdegen/core/check.h"
#include "sdegen/core/json_fields.h"

namespace sdegen {
namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels));
}

// GroupNorm, SiLU, conv3x3 twice, added to the input (through a 1x1 conv when channels change).
class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t in, int64_t out, int64_t groups) {
    norm1 = register_module("norm1", group_norm(groups, in));
    conv1 = register_module("conv1", conv3x3(in, out));
    norm2 = register_module("norm2", group_norm(groups, out));
    conv2 = register_module("conv2", conv3x3(out, out));
    if (in != out) skip = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }
  torch::Tensor forward(const torch::Tensor& h) {
    const torch::Tensor r = conv2->forward(torch::silu(norm2->forward(conv1->forward(torch::silu(norm1->forward(h))))));
    return (skip ? skip->forward(h) : h) + r;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
};
TORCH_MODULE(ResBlock);

// GroupNorm, SiLU, conv3x3: the last layer of both halves.
void push_output_layer(torch::nn::Sequential& s, int64_t groups, int64_t in, int64_t out) {
  s->push_back(group_norm(groups, in));
  s->push_back(torch::nn::SiLU());
  s->push_back(conv3x3(in, out));
}

}  // namespace

void check_autoencoder_options(const AutoencoderOptions& o) {
  SDEGEN_CHECK(o.in_channels() >= 1, "autoencoder: in_channels must be >= 1, got ", o.in_channels());
  SDEGEN_CHECK(o.latent_channels() >= 1, "autoencoder: latent_channels must be >= 1, got ", o.latent_channels());
  SDEGEN_CHECK(!o.channels().empty() && o.channels().size() <= 6,
               "autoencoder: channels must name 1 to 6 levels, got ", o.channels().size());
  SDEGEN_CHECK(o.groups() >= 1, "autoencoder: groups must be >= 1, got ", o.groups());
  for (const int64_t c : o.channels())
    SDEGEN_CHECK(c >= 1 && c % o.groups() == 0, "autoencoder: every level's channels must be a positive multiple of ",
                 "groups = ", o.groups(), ", got ", c);
  const int64_t factor = int64_t{1} << o.halvings();
  SDEGEN_CHECK(o.height() >= factor && o.width() >= factor && o.height() % factor == 0 && o.width() % factor == 0,
               "autoencoder: ", o.channels().size(), " levels halve the image ", o.halvings(), " times, so height and ",
               "width must be positive multiples of ", factor, "; got ", o.height(), "x", o.width());
}

AutoencoderNetImpl::AutoencoderNetImpl(const AutoencoderOptions& o) : options(o) {
  check_autoencoder_options(o);
  const std::vector<int64_t>& ch = o.channels();
  const int64_t levels = static_cast<int64_t>(ch.size()), g = o.groups();
  torch::nn::Sequential enc;
  enc->push_back(conv3x3(o.in_channels(), ch[0]));
  for (int64_t i = 0; i < levels; ++i) {
    enc->push_back(ResBlock(i == 0 ? ch[0] : ch[i - 1], ch[i], g));
    if (i + 1 < levels) enc->push_back(conv3x3(ch[i], ch[i], /*stride=*/2));
  }
  enc->push_back(ResBlock(ch.back(), ch.back(), g));
  push_output_layer(enc, g, ch.back(), 2 * o.latent_channels());
  encoder = register_module("encoder", enc);

  torch::nn::Sequential dec;
  dec->push_back(conv3x3(o.latent_channels(), ch.back()));
  dec->push_back(ResBlock(ch.back(), ch.back(), g));
  // The conv after each upsampling narrows to the finer level's channels, so that the finest
  // level's convolutions run at its own (fewest) channels.
  for (int64_t i = levels - 1; i >= 0; --i) {
    dec->push_back(ResBlock(ch[i], ch[i], g));
    if (i > 0) {
      dec->push_back(torch::nn::Upsample(
          torch::nn::UpsampleOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
      dec->push_back(conv3x3(ch[i], ch[i - 1]));
    }
  }
  push_output_layer(dec, g, ch[0], o.in_channels());
  decoder = register_module("decoder", dec);
}

LatentPosterior AutoencoderNetImpl::encode(const torch::Tensor& x) {
  const int64_t c = options.in_channels();
  SDEGEN_CHECK(x.dim() == 4 && x.size(1) == c && x.size(2) == options.height() && x.size(3) == options.width(),
               "autoencoder: expected images [B, ", c, ", ", options.height(), ", ", options.width(), "], got ",
               x.sizes());
  const auto halves = encoder->forward(x).chunk(2, 1);
  // Clamped as latent diffusion does, so that exp(logvar) stays finite early in training.
  return {halves[0], halves[1].clamp(-30.0, 20.0)};
}

torch::Tensor AutoencoderNetImpl::decode(const torch::Tensor& z) {
  const std::vector<int64_t> s = options.latent_shape();
  SDEGEN_CHECK(z.dim() == 4 && z.sizes().slice(1).vec() == s, "autoencoder: expected latents [B, ", s[0], ", ", s[1],
               ", ", s[2], "], got ", z.sizes());
  return decoder->forward(z);
}

nlohmann::json to_json(const AutoencoderOptions& o) {
  return {{"type", "autoencoder"},          {"in_channels", o.in_channels()}, {"height", o.height()},
          {"width", o.width()},             {"latent_channels", o.latent_channels()},
          {"channels", o.channels()},       {"groups", o.groups()}};
}

AutoencoderOptions autoencoder_options_from_json(const nlohmann::json& j) {
  static const std::vector<std::string> keys = {"type",  "in_channels",     "height", "width",
                                                "latent_channels", "channels", "groups"};
  const JsonFields f(j, "autoencoder", keys);
  f.expect_type("autoencoder");
  AutoencoderOptions o = AutoencoderOptions(f.integer("in_channels"), f.integer("height"), f.integer("width"))
                             .latent_channels(f.integer("latent_channels"))
                             .channels(f.integers("channels"))
                             .groups(f.integer("groups"));
  check_autoencoder_options(o);
  return o;
}

}  // namespace sdegen
