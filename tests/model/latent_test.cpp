// The KL autoencoder and the latent space: shapes, the loss as a weight times the negative ELBO,
// the standardisation and its round trip, storing the space and reading it back (refusing what
// does not fit), and a checkpoint's attachments. Tiny networks (8x8 images, 8 channels).
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sdegen/core/error.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/autoencoder.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/latent.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

std::shared_ptr<AutoencoderModel> tiny_autoencoder(double kl_weight = 1e-3, const std::string& dtype = "float32") {
  nlohmann::json net = to_json(AutoencoderOptions(1, 8, 8).channels({8, 8, 16}).latent_channels(2));
  const nlohmann::json config =
      model_config("autoencoder", 1, {{"net", net}, {"kl_weight", kl_weight}, {"dtype", dtype}});
  return std::dynamic_pointer_cast<AutoencoderModel>(make_model(config));
}

torch::Tensor images(int64_t n, int64_t size = 8) { return torch::rand({n, 1, size, size}) * 2 - 1; }

TEST(Autoencoder, EncodesToTheLatentShapeAndDecodesBack) {
  torch::manual_seed(0);
  for (const int64_t size : {8, 28}) {
    AutoencoderNet net(AutoencoderOptions(1, size, size));  // the default {16, 32, 64}: two halvings
    const LatentPosterior q = net->encode(images(3, size));
    const std::vector<int64_t> latent{3, 4, size / 4, size / 4};
    EXPECT_EQ(q.mean.sizes(), torch::IntArrayRef(latent));
    EXPECT_EQ(q.logvar.sizes(), torch::IntArrayRef(latent));
    EXPECT_EQ(net->decode(q.mean).sizes(), torch::IntArrayRef({3, 1, size, size}));
  }
  AutoencoderNet rgb(AutoencoderOptions(3, 16, 8).channels({8, 16}).latent_channels(3));
  EXPECT_EQ(rgb->options.latent_shape(), (std::vector<int64_t>{3, 8, 4}));
  EXPECT_EQ(rgb->decode(rgb->encode(torch::zeros({2, 3, 16, 8})).mean).sizes(), torch::IntArrayRef({2, 3, 16, 8}));
}

TEST(Autoencoder, RefusesOptionsThatDoNotFit) {
  EXPECT_THROW_WITH(AutoencoderNet(AutoencoderOptions(1, 28, 28).channels({8, 16, 32, 64})), InvalidArgument,
                       "multiples of 8; got 28x28");
  EXPECT_THROW_WITH(AutoencoderNet(AutoencoderOptions(1, 8, 8).channels({12})), InvalidArgument,
                       "positive multiple of groups = 8, got 12");
  EXPECT_THROW_WITH(AutoencoderNet(AutoencoderOptions(1, 8, 8).latent_channels(0)), InvalidArgument,
                       "latent_channels must be >= 1");
  AutoencoderNet net(AutoencoderOptions(1, 8, 8));
  EXPECT_THROW_WITH(net->encode(torch::zeros({2, 1, 8, 4})), InvalidArgument, "expected images [B, 1, 8, 8]");
  EXPECT_THROW_WITH(net->decode(torch::zeros({2, 4, 3, 3})), InvalidArgument, "expected latents [B, 4, 2, 2]");
  nlohmann::json j = to_json(AutoencoderOptions(1, 8, 8));
  EXPECT_EQ(to_json(autoencoder_options_from_json(j)), j);
  j["chanels"] = 3;
  EXPECT_THROW_WITH(autoencoder_options_from_json(j), InvalidArgument, "chanels");
}

// loss = (beta / d) (-ELBO - d/2 log(pi beta)) with the same draw of z, and the ELBO's terms:
// the KL in closed form, no drift.
TEST(Autoencoder, TheLossIsAWeightTimesTheNegativeElbo) {
  torch::manual_seed(1);
  for (const double beta : {1e-4, 0.5}) {
    auto ae = tiny_autoencoder(beta, "float64");
    const torch::Tensor x = images(5).to(torch::kDouble);
    torch::manual_seed(7);
    const double loss = ae->loss(x).item<double>();
    torch::manual_seed(7);
    const ElboTerms terms = ae->elbo(x, 1);
    const double d = 64;
    const double expected = (beta / d) * (-terms.total() - d / 2 * std::log(M_PI * beta)).mean().item<double>();
    EXPECT_NEAR(loss, expected, 1e-10 * std::abs(expected));
    EXPECT_EQ(max_abs_diff(terms.drift, torch::zeros({5}, torch::kDouble)), 0.0);
    const LatentPosterior q = ae->encode(x);
    const torch::Tensor kl = 0.5 * (q.mean.square() + q.logvar.exp() - 1 - q.logvar).flatten(1).sum(1);
    EXPECT_LT(max_abs_diff(terms.prior, kl), 1e-12);
  }
  auto ae = tiny_autoencoder();
  EXPECT_THROW_WITH(ae->sde(DiffusionSpec{}), InvalidArgument, "no SDE to sample");
  EXPECT_THROW_WITH(ae->loss(images(2), Condition(torch::zeros({2}, torch::kLong))), InvalidArgument,
                       "unconditional");
  EXPECT_EQ(make_model(ae->config())->config(), ae->config());
}

TEST(LatentSpace, StandardisesToUnitSpreadAndRoundTrips) {
  torch::manual_seed(2);
  auto ae = tiny_autoencoder();
  const torch::Tensor x = images(40);
  const torch::Tensor means = posterior_means(*ae, x, /*batch=*/7);
  const LatentSpace space = LatentSpace::fit(ae, means);
  const torch::Tensor z = space.encode(x, 16);
  EXPECT_EQ(z.sizes(), torch::IntArrayRef({40, 2, 2, 2}));
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(z.to(torch::kDouble).std().item<double>(), 1.0, 1e-5);
  EXPECT_LT(max_abs_diff(space.unstandardize(z), means), 1e-5);
  EXPECT_LT(max_abs_diff(space.standardize(space.unstandardize(z)), z), 1e-5);
  // decode is the decoder of the unstandardised latents.
  torch::NoGradGuard no_grad;
  EXPECT_LT(max_abs_diff(space.decode(z, 9), ae->decode(means)), 1e-5);
  EXPECT_THROW_WITH(LatentSpace(ae, 0.0, 0.0), InvalidArgument, "scale positive");
  EXPECT_THROW_WITH(LatentSpace::fit(ae, means.narrow(0, 0, 1)), InvalidArgument, "at least 2 images");
  EXPECT_THROW_WITH(space.decode(torch::zeros({1, 3, 2, 2})), InvalidArgument, "expected latents [n, 2, 2, 2]");
}

TEST(LatentSpace, IsStoredAndReadBackExactly) {
  torch::manual_seed(3);
  auto ae = tiny_autoencoder();
  const torch::Tensor x = images(10);
  const LatentSpace space = LatentSpace::fit(ae, posterior_means(*ae, x));
  const std::string bytes = space.weights_bytes();
  torch::manual_seed(99);  // other initial weights: what is read must replace them
  const LatentSpace back = LatentSpace::from_stored(space.to_json(), bytes, "here");
  EXPECT_EQ(back.shift(), space.shift());
  EXPECT_EQ(back.scale(), space.scale());
  EXPECT_TRUE(torch::equal(back.encode(x), space.encode(x)));
  const torch::Tensor z = torch::randn({3, 2, 2, 2});
  EXPECT_TRUE(torch::equal(back.decode(z), space.decode(z)));

  // Weights of another architecture, a damaged file, NaN weights and a non-autoencoder are refused.
  nlohmann::json wider = space.to_json();
  wider["autoencoder"]["net"]["channels"] = {8, 16, 16};
  EXPECT_THROW_WITH(LatentSpace::from_stored(wider, bytes, "here"), InvalidArgument,
                       "in the stored weights but");
  EXPECT_THROW_WITH(LatentSpace::from_stored(space.to_json(), bytes.substr(0, bytes.size() / 2), "here"), IoError,
                       "'here': the autoencoder's weights are unreadable");
  {
    torch::NoGradGuard no_grad;
    ae->parameters().front().view(-1)[0] = std::nan("");
  }
  EXPECT_THROW_WITH(LatentSpace::from_stored(space.to_json(), space.weights_bytes(), "here"), IoError,
                       "holds NaN or infinite values");
  nlohmann::json flow = space.to_json();
  flow["autoencoder"] = model_config("flow", 2);
  EXPECT_THROW_WITH(LatentSpace::from_stored(flow, bytes, "here"), InvalidArgument, "not an autoencoder");
}

// A checkpoint stores its attachments with their checksums; a changed byte is caught on reading.
TEST(Checkpoint, StoresAttachmentsAndCatchesADamagedOne) {
  const std::string out = test::temp_path("attachments");
  torch::manual_seed(4);
  ModelPtr model = make_model(model_config("flow", 2));
  TrainOptions options;
  options.steps(2).batch(4).seed(0);
  TrainSetup setup;
  setup.attachments["blob.bin"] = std::string("\0\1\2 attached", 12);
  setup.progress = nullptr;
  train(model, torch::randn({16, 2}), options, out, setup);
  EXPECT_EQ(read_checkpoint_attachment(out, "blob.bin"), std::string("\0\1\2 attached", 12));
  EXPECT_THROW_WITH(read_checkpoint_attachment(out, "other.bin"), IoError, "holds no 'other.bin'");
  EXPECT_THROW_WITH(read_checkpoint_attachment(out, "model.pt"), InvalidArgument, "a plain file name other than");
  {
    std::fstream f(out + "/checkpoint/blob.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);
    f.put('X');
  }
  EXPECT_THROW_WITH(read_checkpoint_attachment(out, "blob.bin"), IoError, "CRC-32");
  setup.attachments = {{"../escape", "x"}};
  setup.overwrite = true;
  EXPECT_THROW_WITH(train(model, torch::randn({16, 2}), options, out, setup), InvalidArgument,
                       "plain file name");
  std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace sdegen
