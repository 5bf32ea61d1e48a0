#pragma once
// The settings of sdegen train, shared by the vector path (train_cmd.cpp) and the image path
// (image_train.cpp).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "sdegen/data/images.h"
#include "sdegen/net/autoencoder.h"
#include "sdegen/train/distributed.h"
#include "sdegen/train/options.h"

namespace sdegen::app {

struct TrainArgs {
  std::string data = "laplace5";
  std::string model = "flow";
  std::string schedule;    // empty: the model's default
  std::string prediction;  // empty: the model's default
  std::string coupling;    // empty: independent (objective/coupling.h)
  double sinkhorn_epsilon = 0.0;  // 0: the coupling's default
  std::string config_file;
  std::string model_config;  // JSON text: any other key of the model's config
  nlohmann::json model_overrides = nlohmann::json::object();
  // 0 or empty: the model's recommended value (train/recipe.h, then the model's defaults).
  int64_t width = 0, depth = -1, steps = 0, val_every = -1, patience = -1;
  std::string activation, embedding, decay, val_metric;
  double fourier_scale = 0.0, lr = 0.0;
  int64_t n_train = 1000, n_val = 8000;
  double val_fraction = 0.2;  // 0.1 left 20 noisy rows of a 200-row table to choose weights by
  TrainOptions options;
  std::string out = "runs/train";
  bool resume = false, overwrite = false;
  // Images (apps/image_train.cpp).
  std::string net;              // empty: mlp for vectors, unet for images
  int64_t base_channels = 0;    // 0: the image recipe's
  int64_t patch = 0, heads = 0; // --net dit (0: DiTOptions' defaults; --width and --depth too)
  double mlp_ratio = 0.0;
  int64_t image_size = 0;       // 0: the images' own size
  double p_uncond = 0.1;        // classifier-free guidance's label (and condition) dropout
  // A CSV file's columns that condition the model (comma separated names); the rest are generated.
  std::string condition_columns;
  // Latent models: the run directory of an autoencoder whose latents the model learns.
  std::string latent;
  // --model autoencoder (0: AutoencoderOptions' and AutoencoderModelOptions' defaults).
  int64_t latent_channels = 0;
  double kl_weight = 0.0;
  // Data-parallel training (apps/launch.h): --nproc local workers, the collectives' and the
  // rendezvous' timeout in seconds, and this worker's communicator (null: one process).
  int64_t nproc = 1;
  double dist_timeout = 120.0;
  CommunicatorPtr group;
  // Where the model trains: cpu, or cuda[:N] with a CUDA LibTorch (core/device.h); `device` as
  // given, `on` as parsed once by the command's callback.
  std::string device = "cpu";
  torch::Device on{torch::kCPU};
};

// The image recipe (apps/image_train.cpp), measured on Fashion-MNIST with flow: 8000 steps of
// batch 64 at base 16 (0.41M parameters) took 0.41 s a step on 2 quiet threads, about 55 minutes
// with its validations, and gave fd 6.9x fd_floor at 5000 images (README "Images"); base 32 takes
// 0.87 s a step, so the same hour would give it only 4000 steps. Eight validations of the held-out
// 1000 images' -ELBO (each one forward pass over them) choose the weights.
constexpr int64_t kImageSteps = 8000;
constexpr int64_t kImageBaseChannels = 16;
constexpr int64_t kImageValidationsPerRun = 8;
// The U-Net of a latent model (4x7x7 latents of Fashion-MNIST): at equal training time, base 32
// (0.047 s a step) reached fd 3.86 and base 64 (0.113 s) 4.22 (README "Latent diffusion and the DiT").
constexpr int64_t kLatentBaseChannels = 32;
// The autoencoder's steps at the same batch (README "Latent diffusion and the DiT").
constexpr int64_t kAutoencoderSteps = 3000;

// --coupling and --sinkhorn-epsilon as model overrides; refused for the general models, which
// draw no pairs (sde, ode).
void add_coupling_overrides(const TrainArgs& a, nlohmann::json& overrides);

// "fashion-mnist" or a directory (of PNG images).
bool is_image_data(const std::string& spec);
// The training images of such a spec: Fashion-MNIST's training split, or the folder's images
// (resized to image_size; 0: as they are).
ImageData load_training_images(const std::string& spec, int64_t image_size = 0);

// The image recipe's autoencoder (--model autoencoder): channels {b, 2b, 4b} from --base-channels
// b (0: 16), as many halvings (up to two) as the image size allows, --latent-channels (0: 4).
AutoencoderOptions recipe_autoencoder(const TrainArgs& a, const std::vector<int64_t>& shape);

// sdegen train on images: a U-Net in any model (class-conditional when the images are labelled,
// except the general sde and ode), with the image recipe's defaults for whatever was not given.
void run_image_training(TrainArgs& a, const CLI::App& command);

}  // namespace sdegen::app
