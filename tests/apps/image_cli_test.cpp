// The image path of the program, end to end on a tiny labelled folder of PNG images: train a
// class-conditional U-Net, resume it, sample a grid with guidance, evaluate it with a classifier
// of the folder, and refuse what does not apply.
#include <nlohmann/json.hpp>

#include "apps/cli_support.h"
#include "sdegen/io/png.h"

namespace sdegen {
namespace {

using test::CliTest;
using test::run_sdegen;

class ImageCli : public CliTest {
 protected:
  // DIR/<a|b>/<k>.png: 8x8 grey images, class a bright on the left, class b on the right.
  std::string folder() { return test::write_two_class_folder(path("images")); }
};

TEST_F(ImageCli, TrainsResumesAndSamplesAGridWithOneRowPerClass) {
  const std::string data = folder(), run = path("run");
  const std::string train = "train --data " + data + " --model flow --base-channels 8 --batch 8 --log-every 5 --out " + run;
  const test::Outcome first = run_sdegen(train + " --steps 10");
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("trained flow with a U-Net on '" + data + "' (23 images of 1x8x8, 2 classes)"),
            std::string::npos)
      << first.output;
  const test::Outcome resumed = run_sdegen(train + " --steps 14 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find(": 14 steps"), std::string::npos) << resumed.output;

  const std::string grid = path("grid.png");
  const test::Outcome sampled =
      run_sdegen("sample --checkpoint " + run + " --solver euler --steps 4 --guidance 2 --columns 3 --out " + grid);
  ASSERT_EQ(sampled.code, 0) << sampled.output;
  EXPECT_NE(sampled.output.find("sampled 6 images"), std::string::npos) << sampled.output;
  EXPECT_NE(sampled.output.find("guidance 2, one row per class"), std::string::npos) << sampled.output;
  // Two rows (classes) of three 8x8 images with 2 pixels of padding around each.
  const torch::Tensor png = read_png(grid);
  EXPECT_EQ(png.sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 3 * 10 + 2}));

  const test::Outcome one = run_sdegen("sample --checkpoint " + run + " --steps 4 --solver euler --label 1 --n 4 --out " +
                                       path("b.png"));
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("class b"), std::string::npos) << one.output;

  EXPECT_CLI_ERROR(run_sdegen("sample --checkpoint " + run + " --label 2 --out " + path("c.png")),
                   "--label must be -1 (every class) or a class in [0, 2), got 2");
  EXPECT_CLI_ERROR(run_sdegen("sample --checkpoint " + run + " --out " + path("c.csv")), "--out must end in .png");
  // The trajectory strip: a row per class, 5 snapshots of an 8-step solve.
  const test::Outcome plotted =
      run_sdegen("plot --checkpoint " + run + " --steps 8 --snapshots 5 --guidance 2 --out " + path("plots"));
  ASSERT_EQ(plotted.code, 0) << plotted.output;
  EXPECT_EQ(read_png(path("plots/trajectories.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 5 * 10 + 2}));
  EXPECT_TRUE(std::filesystem::exists(path("plots/loss.png")));
  EXPECT_CLI_ERROR(run_sdegen("plot --checkpoint " + run + " --steps 8 --snapshots 10 --out " + path("plots")),
                   "the solve has 9 states; 10 snapshots need a solver with more steps");
}

// sdegen eval on an image model: a folder needs its own classifier; with one, the figures at each
// guidance weight, bits per dimension, the JSON and a grid.
TEST_F(ImageCli, EvaluatesWithAClassifierOfTheFolder) {
  const std::string data = folder(), run = path("run");
  const test::Outcome trained =
      run_sdegen("train --data " + data + " --model flow --base-channels 8 --batch 8 --steps 6 --out " + run);
  ASSERT_EQ(trained.code, 0) << trained.output;
  EXPECT_CLI_ERROR(run_sdegen("eval --checkpoint " + run),
                   "train one with sdegen train-classifier --data " + data + " --out CLF");
  const test::Outcome clf = run_sdegen("train-classifier --data " + data + " --epochs 2 --out " + path("clf"));
  ASSERT_EQ(clf.code, 0) << clf.output;
  const std::string eval = "eval --checkpoint " + run + " --classifier " + path("clf") +
                           " --n 10 --sample-solver euler --sample-steps 3 --guidance 0,2 --likelihood-n 4";
  EXPECT_CLI_ERROR(run_sdegen(eval + " --samples-out " + path("s.csv")), "must end in .png");
  const test::Outcome evaluated =
      run_sdegen(eval + " --out " + path("eval.json") + " --samples-out " + path("eval.png"));
  ASSERT_EQ(evaluated.code, 0) << evaluated.output;
  EXPECT_NE(evaluated.output.find("fd_floor (real against real, same n)"), std::string::npos) << evaluated.output;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(path("eval.json")));
  ASSERT_EQ(j.at("guidance").size(), 2u);
  EXPECT_EQ(j["guidance"][1]["weight"].get<double>(), 2.0);
  EXPECT_EQ(j["guidance"][1]["nfe"].get<int64_t>(), 3);
  const double accuracy = j["guidance"][1]["class_accuracy"].get<double>();
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
  const std::vector<int64_t> histogram = j["guidance"][0]["histogram"].get<std::vector<int64_t>>();
  ASSERT_EQ(histogram.size(), 2u);
  EXPECT_EQ(histogram[0] + histogram[1], 10);
  EXPECT_GT(j.at("fd_floor").get<double>(), 0.0);
  EXPECT_TRUE(j.at("elbo_bits_per_dim").is_number()) << j.dump();
  EXPECT_TRUE(j.at("bits_per_dim").is_number()) << j.dump();
  // The first weight's figures under the names.
  EXPECT_EQ(j.at("fd").get<double>(), j["guidance"][0]["fd"].get<double>());
  EXPECT_TRUE(j.at("class_accuracy").is_number()) << j.dump();
  EXPECT_EQ(j.at("nfe").get<int64_t>(), 3);
  EXPECT_EQ(j.at("likelihood_n").get<int64_t>(), 4);
  // The grid: the first weight's images, one column per class, at most as many rows as columns.
  EXPECT_EQ(read_png(path("eval.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 2 * 10 + 2}));
}

// --net dit trains a diffusion transformer with the same recipe, checkpoints, resumes and samples;
// its shape flags are refused where they do not apply.
TEST_F(ImageCli, TrainsAndSamplesADiffusionTransformer) {
  const std::string data = folder(), run = path("dit");
  const std::string train = "train --data " + data + " --model flow --net dit --width 16 --depth 1 --heads 2 " +
                            "--patch 4 --batch 8 --out " + run;
  const test::Outcome trained = run_sdegen(train + " --steps 3");
  ASSERT_EQ(trained.code, 0) << trained.output;
  const nlohmann::json config = nlohmann::json::parse(test::read_file(run + "/checkpoint/config.json"));
  const nlohmann::json net = config.at("model").at("net");
  EXPECT_EQ(net.at("type"), "dit");
  EXPECT_EQ(net.at("patch"), 4);
  EXPECT_EQ(net.at("hidden"), 16);
  EXPECT_EQ(net.at("num_classes"), 2);
  EXPECT_EQ(net.at("mlp_ratio"), 4.0);  // the default
  const test::Outcome resumed = run_sdegen(train + " --steps 5 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const test::Outcome grid =
      run_sdegen("sample --checkpoint " + run + " --solver euler --steps 2 --columns 3 --out " + path("dit.png"));
  ASSERT_EQ(grid.code, 0) << grid.output;
  EXPECT_EQ(read_png(path("dit.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 3 * 10 + 2}));
  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --net dit --base-channels 8 --out " + path("x")),
                   "--base-channels shapes the U-Net");
  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --patch 4 --out " + path("x")),
                   "shape the diffusion transformer (--net dit)");
  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --net dit --patch 3 --out " + path("x")),
                   "cannot be cut into 3x3 patches");
  EXPECT_CLI_ERROR(run_sdegen("train --data moons --patch 2 --out " + path("x")), "for images (--net dit)");
}

// An autoencoder and models on its latents: the latent model's checkpoint embeds the autoencoder,
// so it resumes, samples (a decoded grid) and evaluates (fd of decoded images, the autoencoder's
// reconstruction figures, the ELBO per latent dimension and no pixel bits) after the
// autoencoder's directory is gone.
TEST_F(ImageCli, TrainsModelsOnAnAutoencodersLatentsThatOutliveIt) {
  const std::string data = folder(), ae = path("ae"), run = path("latent");
  const test::Outcome trained_ae =
      run_sdegen("train --data " + data + " --model autoencoder --base-channels 8 --batch 8 --steps 4 --out " + ae);
  ASSERT_EQ(trained_ae.code, 0) << trained_ae.output;
  const nlohmann::json ae_config = nlohmann::json::parse(test::read_file(ae + "/checkpoint/config.json"));
  EXPECT_EQ(ae_config.at("kind"), "autoencoder");
  EXPECT_EQ(ae_config.at("model").at("net").at("channels"), nlohmann::json({8, 16, 32}));
  EXPECT_CLI_ERROR(run_sdegen("sample --checkpoint " + ae + " --out " + path("x.png")), "samples nothing");
  EXPECT_CLI_ERROR(run_sdegen("plot --checkpoint " + ae + " --out " + path("p")), "an autoencoder, which has none");
  const test::Outcome clf = run_sdegen("train-classifier --data " + data + " --epochs 2 --out " + path("clf"));
  ASSERT_EQ(clf.code, 0) << clf.output;
  const std::string with_classifier = " --classifier " + path("clf") + " --n 6";
  const test::Outcome ae_eval = run_sdegen("eval --checkpoint " + ae + with_classifier + " --out " +
                                           path("ae.json") + " --samples-out " + path("recon.png"));
  ASSERT_EQ(ae_eval.code, 0) << ae_eval.output;
  const nlohmann::json recon = nlohmann::json::parse(test::read_file(path("ae.json"))).at("reconstruction");
  EXPECT_EQ(recon.at("n"), 6);
  EXPECT_GT(recon.at("fd_floor").get<double>(), 0.0);
  EXPECT_TRUE(recon.at("fd").is_number() && recon.at("psnr").is_number()) << recon.dump();
  EXPECT_EQ(read_png(path("recon.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 6 * 10 + 2}));

  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --model autoencoder --net dit --out " + path("x")),
                   "--net and --latent are for the models trained on its latents");
  const std::string train = "train --data " + data + " --latent " + ae + " --model flow --base-channels 8 --batch 8 " +
                            "--out " + run;
  const test::Outcome trained = run_sdegen(train + " --steps 4");
  ASSERT_EQ(trained.code, 0) << trained.output;
  const nlohmann::json config = nlohmann::json::parse(test::read_file(run + "/checkpoint/config.json"));
  EXPECT_EQ(config.at("extra").at("latent").at("latent_shape"), nlohmann::json({4, 2, 2}));
  EXPECT_EQ(config.at("model").at("net").at("in_channels"), 4);
  EXPECT_TRUE(config.at("files").contains("autoencoder.pt")) << config.dump();
  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --latent " + run + " --out " + path("y")),
                   "it must be an autoencoder");

  // The diffusion transformer on the same latents (2x2: one token of patch 2), 64 wide on latents.
  const test::Outcome dit = run_sdegen("train --data " + data + " --latent " + ae + " --model flow --net dit " +
                                       "--depth 1 --heads 2 --batch 8 --steps 2 --out " + path("dit"));
  ASSERT_EQ(dit.code, 0) << dit.output;
  const nlohmann::json dit_net =
      nlohmann::json::parse(test::read_file(path("dit") + "/checkpoint/config.json")).at("model").at("net");
  EXPECT_EQ(dit_net.at("hidden"), 64);
  EXPECT_EQ(dit_net.at("patch"), 2);

  std::filesystem::remove_all(ae);
  const test::Outcome resumed = run_sdegen(train + " --steps 6 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const test::Outcome grid =
      run_sdegen("sample --checkpoint " + run + " --solver euler --steps 2 --columns 3 --out " + path("latent.png"));
  ASSERT_EQ(grid.code, 0) << grid.output;
  EXPECT_NE(grid.output.find("in an autoencoder's latents, decoded"), std::string::npos) << grid.output;
  EXPECT_EQ(read_png(path("latent.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 3 * 10 + 2}));
  EXPECT_CLI_ERROR(run_sdegen("plot --checkpoint " + run + " --out " + path("p")), "a latent model");
  const test::Outcome evaluated = run_sdegen("eval --checkpoint " + run + with_classifier +
                                             " --sample-solver euler --sample-steps 2 --out " + path("latent.json"));
  ASSERT_EQ(evaluated.code, 0) << evaluated.output;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(path("latent.json")));
  EXPECT_TRUE(j.at("fd").is_number()) << j.dump();
  EXPECT_TRUE(j.at("reconstruction").at("psnr").is_number()) << j.dump();
  EXPECT_TRUE(j.at("latent_nelbo_per_dim").is_number()) << j.dump();
  EXPECT_TRUE(j.at("bits_per_dim").is_null() && j.at("elbo_bits_per_dim").is_null()) << j.dump();
  EXPECT_NE(evaluated.output.find("nats per latent dimension"), std::string::npos) << evaluated.output;
  const test::Outcome dit_grid =
      run_sdegen("sample --checkpoint " + path("dit") + " --solver euler --steps 2 --out " + path("dit.png"));
  ASSERT_EQ(dit_grid.code, 0) << dit_grid.output;
  EXPECT_EQ(read_png(path("dit.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 10 * 10 + 2}));
}

// The few-step students of an image teacher: a consistency distillation and a reflow learn the
// guided teacher, so they sample and evaluate with guidance 1 by default and refuse another weight
// (they learned no unconditional map); the consistency model is measured by its samples alone.
TEST_F(ImageCli, DistillsAndReflowsAClassConditionalTeacher) {
  const std::string data = folder(), teacher = path("teacher");
  const test::Outcome trained =
      run_sdegen("train --data " + data + " --model flow --base-channels 8 --batch 8 --steps 6 --out " + teacher);
  ASSERT_EQ(trained.code, 0) << trained.output;
  const test::Outcome clf = run_sdegen("train-classifier --data " + data + " --epochs 2 --out " + path("clf"));
  ASSERT_EQ(clf.code, 0) << clf.output;

  const test::Outcome cd = run_sdegen("distill --checkpoint " + teacher + " --levels 4 --steps 4 --batch 8 --out " +
                                      path("cd"));
  ASSERT_EQ(cd.code, 0) << cd.output;
  const nlohmann::json config = nlohmann::json::parse(test::read_file(path("cd/checkpoint/config.json")));
  EXPECT_EQ(config.at("extra").at("distill").at("guidance").get<double>(), 2.0);  // the teacher's default
  const double sigma_data = config.at("model").at("sigma_data").get<double>();
  EXPECT_GT(sigma_data, 0.3);  // the folder's pixel spread, not the standardised 1
  EXPECT_LT(sigma_data, 1.0);
  // From the teacher's weights: the student's network predicts velocity, as the teacher's does.
  const test::Outcome warm = run_sdegen("distill --checkpoint " + teacher + " --init teacher --levels 4 --steps 2 " +
                                        "--batch 8 --out " + path("cdt"));
  ASSERT_EQ(warm.code, 0) << warm.output;
  const nlohmann::json warm_config = nlohmann::json::parse(test::read_file(path("cdt/checkpoint/config.json")));
  EXPECT_EQ(warm_config.at("model").at("inner"), "prediction");
  EXPECT_EQ(warm_config.at("model").at("prediction"), "velocity");
  EXPECT_EQ(warm_config.at("extra").at("distill").at("init"), "teacher");
  const test::Outcome grid =
      run_sdegen("sample --checkpoint " + path("cd") + " --solver consistency --steps 2 --out " + path("cd.png"));
  ASSERT_EQ(grid.code, 0) << grid.output;
  EXPECT_NE(grid.output.find("guidance 1"), std::string::npos) << grid.output;
  EXPECT_EQ(read_png(path("cd.png")).sizes(), torch::IntArrayRef({1, 2 * 10 + 2, 10 * 10 + 2}));
  const test::Outcome evaluated = run_sdegen("eval --checkpoint " + path("cd") + " --classifier " + path("clf") +
                                             " --n 10 --out " + path("cd.json"));
  ASSERT_EQ(evaluated.code, 0) << evaluated.output;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(path("cd.json")));
  EXPECT_EQ(j.at("nfe").get<int64_t>(), 1);
  EXPECT_EQ(j.at("guidance_weight").get<double>(), 1.0);
  EXPECT_TRUE(j.at("fd").is_number()) << j.dump();
  EXPECT_TRUE(j.at("elbo_bits_per_dim").is_null()) << j.dump();

  const test::Outcome rf = run_sdegen("reflow --checkpoint " + teacher + " --pairs 12 --solver heun --solver-steps 2 " +
                                      "--steps 4 --batch 8 --out " + path("rf"));
  ASSERT_EQ(rf.code, 0) << rf.output;
  EXPECT_NE(rf.output.find("straightness (0: straight paths): teacher"), std::string::npos) << rf.output;
  const test::Outcome euler =
      run_sdegen("sample --checkpoint " + path("rf") + " --solver euler --steps 2 --out " + path("rf.png"));
  ASSERT_EQ(euler.code, 0) << euler.output;
  EXPECT_NE(euler.output.find("guidance 1"), std::string::npos) << euler.output;
  EXPECT_CLI_ERROR(run_sdegen("sample --checkpoint " + path("rf") + " --guidance 2 --out " + path("rf2.png")),
                   "no unconditional map to guide by");
  // Its unconditional bits per dimension would be the untrained null label's: not measured.
  const test::Outcome rf_eval = run_sdegen("eval --checkpoint " + path("rf") + " --classifier " + path("clf") +
                                           " --n 10 --sample-solver euler --sample-steps 1 --out " + path("rf.json"));
  ASSERT_EQ(rf_eval.code, 0) << rf_eval.output;
  EXPECT_NE(rf_eval.output.find("learned no unconditional map"), std::string::npos) << rf_eval.output;
  const nlohmann::json r = nlohmann::json::parse(test::read_file(path("rf.json")));
  EXPECT_TRUE(r.at("fd").is_number()) << r.dump();
  EXPECT_TRUE(r.at("elbo_bits_per_dim").is_null()) << r.dump();
}

// A flat folder trains an unconditional model: sampling ignores the default guidance and refuses
// --guidance and --label given on the command line.
TEST_F(ImageCli, AnUnconditionalModelSamplesWithoutGuidance) {
  const std::string flat = path("flat"), run = path("run");
  std::filesystem::create_directories(flat);
  for (int k = 0; k < 8; ++k) write_png(flat + "/" + std::to_string(k) + ".png", torch::full({1, 8, 8}, 20 * k, torch::kUInt8));
  const test::Outcome trained =
      run_sdegen("train --data " + flat + " --model flow --base-channels 8 --batch 4 --steps 3 --out " + run);
  ASSERT_EQ(trained.code, 0) << trained.output;
  const std::string sample = "sample --checkpoint " + run + " --solver euler --steps 2 --n 4 --out " + path("u.png");
  const test::Outcome sampled = run_sdegen(sample);
  ASSERT_EQ(sampled.code, 0) << sampled.output;
  EXPECT_NE(sampled.output.find("sampled 4 images"), std::string::npos) << sampled.output;
  EXPECT_CLI_ERROR(run_sdegen(sample + " --guidance 3"), "--label and --guidance need a class-conditional model");
  EXPECT_CLI_ERROR(run_sdegen(sample + " --label 0"), "--label must be -1");
}

// The general models have no prediction to guide: they learn a labelled folder without its
// labels, and sample from their checkpoint alone (sde with its learned diffusion).
TEST_F(ImageCli, TheGeneralModelsLearnImagesWithoutLabels) {
  const std::string data = folder();
  for (const std::string model : {"ode", "sde"}) {
    const std::string run = path(model);
    const std::string config = model == "ode" ? " --model-config '{\"steps\": 3}'" : "";
    const test::Outcome trained = run_sdegen("train --data " + data + " --model " + model +
                                             " --base-channels 8 --batch 4 --steps 2" + config + " --out " + run);
    ASSERT_EQ(trained.code, 0) << trained.output;
    EXPECT_NE(trained.output.find("the '" + model + "' model is unconditional: it learns the images of '" + data +
                                  "' without their labels"),
              std::string::npos)
        << trained.output;
    const std::string solver = model == "ode" ? "euler" : "euler-maruyama";
    const test::Outcome sampled = run_sdegen("sample --checkpoint " + run + " --solver " + solver +
                                             " --steps 2 --n 3 --out " + path(model + ".png"));
    ASSERT_EQ(sampled.code, 0) << sampled.output;
    EXPECT_NE(sampled.output.find("sampled 3 images"), std::string::npos) << sampled.output;
    EXPECT_EQ(read_png(path(model + ".png")).size(0), 1);
    const test::Outcome plotted = run_sdegen("plot --checkpoint " + run + " --steps 4 --snapshots 3 --out " +
                                             path(model + "_plots"));
    ASSERT_EQ(plotted.code, 0) << plotted.output;
  }
  // Evaluated from the checkpoints alone: the ode model's bits per dimension come from its flow;
  // the sde model samples with its learned diffusion and reports its ELBO alone.
  ASSERT_EQ(run_sdegen("train-classifier --data " + data + " --epochs 1 --out " + path("clf")).code, 0);
  for (const std::string model : {"ode", "sde"}) {
    const std::string out = path(model + ".json");
    const test::Outcome evaluated = run_sdegen("eval --checkpoint " + path(model) + " --classifier " + path("clf") +
                                               " --n 6 --sample-steps 2 --likelihood-n 2 --out " + out);
    ASSERT_EQ(evaluated.code, 0) << evaluated.output;
    const nlohmann::json j = nlohmann::json::parse(test::read_file(out));
    EXPECT_EQ(j.at("sampler"), model == "ode" ? "heun" : "euler-maruyama");
    EXPECT_EQ(j.at("likelihood_n"), model == "ode" ? 2 : 0);
    EXPECT_TRUE(j.at("elbo_bits_per_dim").is_number()) << j.dump();
    if (model == "sde") {
      EXPECT_NE(evaluated.output.find("the 'sde' model has no probability flow"), std::string::npos)
          << evaluated.output;
    }
  }
}

TEST_F(ImageCli, RefusesWhatDoesNotApplyToImages) {
  const std::string data = folder();
  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --net mlp --steps 2 --out " + path("r")),
                   "images train a U-Net or a diffusion transformer (--net unet|dit), got --net mlp");
  EXPECT_CLI_ERROR(run_sdegen("train --data laplace5 --net unet --steps 2 --out " + path("r")),
                   "--net unet is for images");
  std::filesystem::create_directories(data + "/c");
  EXPECT_CLI_ERROR(run_sdegen("train --data " + data + " --steps 2 --out " + path("r")),
                   "class folder '" + data + "/c' holds no PNG images");
  EXPECT_FALSE(std::filesystem::exists(path("r") + "/checkpoint"));
}

}  // namespace
}  // namespace sdegen
