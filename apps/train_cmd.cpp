// sdegen train: fit a model to a built-in density or a CSV file.
#include <fmt/core.h>

#include <filesystem>

#include "apps/commands.h"
#include "apps/json_config.h"
#include "apps/launch.h"
#include "apps/train_args.h"
#include "sdegen/io/csv.h"
#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/model/factory.h"
#include "sdegen/objective/coupling.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/recipe.h"
#include "sdegen/train/trainer.h"

namespace sdegen::app {
namespace {


struct Dataset {
  torch::Tensor train, val;
  // --condition-columns: the conditioning columns of the same rows, and the names of both sets.
  torch::Tensor train_condition, val_condition;
  std::vector<std::string> columns, condition_columns;
};

// A CSV file's rows split into generated and conditioning columns (by --condition-columns),
// then into training and validation rows.
Dataset load_table(const TrainArgs& a) {
  const CsvData csv = load_csv(a.data);
  Dataset d;
  const std::vector<std::string> wanted = a.condition_columns.empty() ? std::vector<std::string>{}
                                                                      : split_trimmed(a.condition_columns);
  for (const std::string& name : wanted)
    SDEGEN_CHECK(!name.empty(), "--condition-columns: an empty name in '", a.condition_columns, "'");
  const std::vector<int64_t> conditioning = column_indices(csv, wanted, "--condition-columns");
  std::vector<int64_t> generated;
  for (int64_t j = 0; j < static_cast<int64_t>(csv.columns.size()); ++j)
    if (std::find(conditioning.begin(), conditioning.end(), j) == conditioning.end()) generated.push_back(j);
  SDEGEN_CHECK(!generated.empty(), "--condition-columns names every column of '", a.data,
               "'; at least one must be left to generate");
  for (const int64_t j : generated) d.columns.push_back(csv.columns[static_cast<size_t>(j)]);
  for (const int64_t j : conditioning) d.condition_columns.push_back(csv.columns[static_cast<size_t>(j)]);
  // One split of the rows for both sets of columns.
  const TrainValSplit s = split_train_val(csv.x, a.val_fraction, a.options.seed());
  auto columns = [](const torch::Tensor& x, const std::vector<int64_t>& j) {
    return x.index_select(1, torch::tensor(j, torch::kLong));
  };
  d.train = columns(s.train, generated), d.val = columns(s.val, generated);
  if (!conditioning.empty())
    d.train_condition = columns(s.train, conditioning), d.val_condition = columns(s.val, conditioning);
  return d;
}

Dataset load_data(const TrainArgs& a) {
  check_data_spec(a.data, /*csv_ok=*/true);
  if (is_csv_name(a.data)) return load_table(a);
  SDEGEN_CHECK(a.condition_columns.empty(), "--condition-columns names columns of a CSV file; '", a.data,
               "' is a built-in density");
  SDEGEN_CHECK(a.n_train > 0 && a.n_val >= 0, "--n-train must be positive and --n-val >= 0");
  const DensityPtr d = make_density(a.data);
  torch::manual_seed(a.options.seed());
  const torch::Tensor train = d->sample(a.n_train);
  Dataset data;
  data.train = train;
  data.val = a.n_val > 0 ? d->sample(a.n_val) : torch::empty({0, train.size(1)}, train.options());
  return data;
}

void run(TrainArgs& a, const CLI::App& command) {
  const bool consistency = a.model == "consistency";
  SDEGEN_CHECK(!consistency || !is_image_data(a.data), "consistency training on images is not built yet; train it on ",
               "vectors or a table");
  if (is_image_data(a.data)) return run_image_training(a, command);
  SDEGEN_CHECK(a.model != "autoencoder" && a.latent.empty() && a.latent_channels == 0 && a.kl_weight == 0,
               "--model autoencoder, --latent, --latent-channels and --kl-weight are for images; '", a.data,
               "' is not fashion-mnist or a folder of PNG images");
  SDEGEN_CHECK(a.net.empty() || a.net == "mlp", "--net ", a.net, " is for images; vectors and tables use the mlp");
  SDEGEN_CHECK(a.patch == 0 && a.heads == 0 && a.mlp_ratio == 0, "--patch, --heads and --mlp-ratio shape the ",
               "diffusion transformer, for images (--net dit)");
  const Dataset data = load_data(a);
  const bool conditioned = data.train_condition.defined();
  const std::string affine_kinds[] = {"flow", "diffusion", "score", "vdm"};
  SDEGEN_CHECK(!conditioned || std::find(std::begin(affine_kinds), std::end(affine_kinds), a.model) !=
                                   std::end(affine_kinds),
               "--condition-columns conditions flow, diffusion, score or vdm; the '", a.model,
               "' model takes no condition vector");
  if (a.resume) {
    // Resuming on other data would load weights of the wrong shape: name the mismatch instead.
    const nlohmann::json saved = load_checkpoint_config(a.out);
    const nlohmann::json& extra = saved.at("extra");
    const std::vector<std::string> before = extra.contains("condition_columns") && extra["condition_columns"].is_array()
                                                ? extra["condition_columns"].get<std::vector<std::string>>()
                                                : std::vector<std::string>{};
    SDEGEN_CHECK(before == data.condition_columns, "cannot resume '", a.out, "': it was trained with ",
                 before.empty() ? std::string("no --condition-columns") : "--condition-columns " + join(before, ","),
                 ", and this run gives ",
                 data.condition_columns.empty() ? std::string("none")
                                                : "--condition-columns " + join(data.condition_columns, ","));
    check_dimension(saved.at("model").at("net").at("in_dim").get<int64_t>(), data.train.size(1), a.data);
  }
  const Standardizer st = fit_standardizer(data.train);
  // The conditioning columns are standardised like the generated ones, on the training rows.
  const Standardizer condition_st = conditioned ? fit_standardizer(data.train_condition) : Standardizer{};
  // The model's recipe, then the flags given, then --model-config on top (its "net" keys merge).
  SDEGEN_CHECK(a.steps >= 0 && a.lr >= 0 && a.width >= 0 && a.fourier_scale >= 0,
               "--steps, --lr, --width and --fourier-scale must be positive (or 0 for the model's recommended)");
  SDEGEN_CHECK(a.val_every >= -1 && a.patience >= -1, "--val-every and --patience must be >= 0 (or -1 for the recipe's)");
  // Consistency training takes the flow recipe's steps, learning rate and network (not measured on its own).
  const Recipe recipe = recommended_recipe(consistency ? "flow" : a.model, data.train.size(0), data.train.size(1));
  a.options.steps(a.steps > 0 ? a.steps : recipe.options.steps());
  a.options.lr(a.lr > 0 ? a.lr : recipe.options.lr());
  a.options.decay(!a.decay.empty() ? a.decay : recipe.options.decay());
  // Validation follows the run's length unless given.
  a.options.val_every(a.val_every >= 0 ? a.val_every : std::max<int64_t>(1, a.options.steps() / kValidationsPerRun));
  a.options.patience(a.patience >= 0 ? a.patience : recipe.options.patience());
  nlohmann::json overrides = recipe.model;
  if (!overrides.contains("net")) overrides["net"] = nlohmann::json::object();
  if (!a.schedule.empty()) overrides["schedule"] = a.schedule;
  SDEGEN_CHECK(!consistency || a.prediction.empty(), "--pred: a consistency model predicts the data end by its "
               "boundary parameterisation; it takes no prediction");
  SDEGEN_CHECK(!consistency || a.val_metric.empty(), "--val-metric: a consistency model has no likelihood or ELBO to ",
               "validate by; it keeps its last (averaged) weights");
  if (!a.prediction.empty()) overrides["prediction"] = a.prediction;
  // The discretisation curriculum spans the whole run.
  if (consistency) overrides["curriculum_steps"] = a.options.steps();
  add_coupling_overrides(a, overrides);
  nlohmann::json& net = overrides["net"];
  if (a.width > 0) net["width"] = a.width;
  if (a.depth >= 0) net["depth"] = a.depth;
  if (!a.activation.empty()) net["activation"] = a.activation;
  if (!a.embedding.empty()) net["time_embedding"] = a.embedding;
  if (a.fourier_scale > 0) net["fourier_scale"] = a.fourier_scale;
  if (conditioned) {
    net["condition_dim"] = condition_st.dim();
    overrides["p_uncond"] = a.p_uncond;
  }
  for (const auto& item : a.model_overrides.items()) {
    if (item.key() == "net" && item.value().is_object()) net.update(item.value());
    else overrides[item.key()] = item.value();
  }
  const nlohmann::json config = model_config(a.model, data.train.size(1), overrides);
  torch::manual_seed(a.options.seed());
  ModelPtr model = make_model(config);
  model->to(a.on);  // the trainer follows it: data, optimiser state, checkpoint loads
  TrainSetup setup;
  // A consistency model has no likelihood or ELBO to validate by: it keeps its last (averaged) weights.
  const bool validating = data.val.size(0) > 0 && !consistency;
  setup.val = validating ? st.transform(data.val) : torch::Tensor();
  // The likelihood validator is unconditional: a conditional model is judged by its ELBO.
  const std::string recipe_metric = conditioned ? "nelbo" : recipe.validation;
  if (validating) setup.validator = make_validator(a.val_metric.empty() ? recipe_metric : a.val_metric, data.val.size(0));
  if (conditioned) {
    setup.conditions = condition_st.transform(data.train_condition);
    if (validating) setup.val_conditions = condition_st.transform(data.val_condition);
  }
  setup.resume = a.resume;
  setup.overwrite = a.overwrite;
  setup.group = a.group;
  setup.extra = {{"data", a.data}, {"standardizer", st.to_json()}};
  if (!data.columns.empty()) setup.extra["columns"] = data.columns;
  if (conditioned) {
    setup.extra["condition_columns"] = data.condition_columns;
    setup.extra["condition_standardizer"] = condition_st.to_json();
  }
  // The run's whole configuration, in the format --config reads (a resumed run keeps the first),
  // written once train() has accepted every input: a refused run leaves the directory as it was.
  setup.on_start = [&] {
    std::filesystem::create_directories(a.out);
    const std::string record = (std::filesystem::path(a.out) / "run.json").string();
    if (!a.resume || !std::filesystem::exists(record)) write_file_atomic(record, options_json(command).dump(2) + "\n");
  };
  const TrainResult r = train(model, st.transform(data.train), a.options, a.out, setup);
  fmt::print("trained {} on '{}' ({} rows, {}-D): {} steps in {:.1f} s, final loss {:.4f}\n", a.model, a.data,
             data.train.size(0), data.train.size(1), r.steps, r.seconds, r.final_loss);
  if (conditioned)
    fmt::print("  generating {} given {}\n", join(data.columns), join(data.condition_columns));
  if (r.stopped_early)
    fmt::print("  stopped early at step {}: {} validations without a better {}\n", r.steps, a.options.patience(),
               r.validation.front().name);
  for (const auto& m : r.validation) fmt::print("  {} = {:.4f}\n", m.name, m.value);
  if (r.best_step >= 0)
    fmt::print("  kept the weights of step {} ({} = {:.4f}) for sampling and evaluation\n", r.best_step,
               r.validation.front().name, r.best_value);
  // The floor a model's samples are judged against: how far the training set itself is from the
  // validation set (a model that reproduced the training points exactly would score this).
  if (data.val.size(0) > 0) {
    const bool one_d = data.train.size(1) == 1;
    fmt::print("  reference: {} from the training set to the validation set = {:.4f}\n",
               one_d ? "Wasserstein-1" : "sliced Wasserstein",
               one_d ? wasserstein1(data.train, data.val) : sliced_wasserstein(data.train, data.val));
  }
  fmt::print("checkpoint: {}\n", r.checkpoint);
}

}  // namespace

void add_coupling_overrides(const TrainArgs& a, nlohmann::json& overrides) {
  if (a.coupling.empty() && a.sinkhorn_epsilon == 0) return;
  SDEGEN_CHECK(a.model != "sde" && a.model != "ode" && a.model != "consistency", "--coupling and --sinkhorn-epsilon pair data with prior draws; ",
               "the '", a.model, "' model draws no pairs (use flow, diffusion, score or vdm)");
  if (!a.coupling.empty()) overrides["coupling"] = a.coupling;
  if (a.sinkhorn_epsilon > 0) overrides["coupling_epsilon"] = a.sinkhorn_epsilon;
}

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model on a built-in density or a CSV file");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--data", a->data,
                  "Data: " + join(density_names()) +
                      ", a numeric CSV file (*.csv), fashion-mnist, or a folder of PNG images (DIR/<class>/*.png "
                      "for labels)");
  std::vector<std::string> models = model_names();
  models.push_back("consistency");
  models.push_back("autoencoder");
  cmd->add_option("--model", a->model,
                  "Model (consistency: consistency training, a few-step map from noise to data; autoencoder: images "
                  "only, the KL autoencoder whose latents --latent trains on)")
      ->check(one_of(models, "model"));
  cmd->add_option("--schedule", a->schedule, "Affine schedule (default: the model's)")
      ->check(one_of(schedule_names(), "schedule"));
  cmd->add_option("--pred", a->prediction, "What the network predicts (default: the model's)")
      ->check(one_of(prediction_names(), "prediction"));
  cmd->add_option("--coupling", a->coupling,
                  "Pairs of data and prior draws in training: independent, ot (exact minibatch optimal transport) "
                  "or ot-sinkhorn (default: independent)")
      ->check(one_of(coupling_names(), "coupling"));
  cmd->add_option("--sinkhorn-epsilon", a->sinkhorn_epsilon,
                  "ot-sinkhorn's regularisation relative to the mean cost (0: 0.05)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--width", a->width, "Hidden units per layer (0: the model's recommended)");
  cmd->add_option("--depth", a->depth, "Hidden layers (-1: the model's recommended)");
  cmd->add_option("--activation", a->activation, "Activation (default: the model's)")
      ->check(one_of(activation_names(), "activation"));
  cmd->add_option("--embedding", a->embedding, "Time embedding (default: the model's)")
      ->check(one_of(time_embedding_names(), "time embedding"));
  cmd->add_option("--fourier-scale", a->fourier_scale, "Std of the Fourier time features (0: the model's)");
  cmd->add_option("--n-train", a->n_train, "Training points drawn from a built-in density")->check(positive());
  cmd->add_option("--n-val", a->n_val, "Validation points drawn from a built-in density");
  cmd->add_option("--val-fraction", a->val_fraction, "Share of a CSV file held out for validation");
  cmd->add_option("--steps", a->steps, "Optimiser steps (0: the model's recommended; images: " +
                                           std::to_string(kImageSteps) + ")");
  cmd->add_option("--batch", a->options.batch(), "Mini-batch size")->check(positive());
  cmd->add_option("--lr", a->lr, "Peak learning rate (0: the model's recommended)");
  cmd->add_option("--optimizer", a->options.optimizer(), "Optimizer")->check(one_of(optimizer_names(), "optimizer"));
  cmd->add_option("--weight-decay", a->options.weight_decay(), "Weight decay");
  cmd->add_option("--warmup", a->options.warmup_steps(), "Linear warm-up steps");
  cmd->add_option("--decay", a->decay, "Learning-rate decay (default: the model's recommended)")
      ->check(one_of(lr_decay_names(), "decay"));
  cmd->add_option("--grad-clip", a->options.grad_clip(), "Max gradient norm (0: off)");
  cmd->add_option("--ema", a->options.ema_decay(), "EMA decay of the weights (0: off)");
  cmd->add_option("--seed", a->options.seed(), "Random seed (data, batches, noise)")->check(seed_value());
  cmd->add_option("--threads", a->options.threads(), "Intra-op threads")->check(thread_count());
  cmd->add_option("--fused", a->options.fused(),
                  "Hand-derived fused training steps where the model has them (false: autograd, the reference)");
  cmd->add_option("--log-every", a->options.log_every(), "Steps between log rows")->check(positive());
  cmd->add_option("--val-every", a->val_every,
                  "Steps between validations on the held-out rows (0: only at the end; -1: the run's steps / " +
                      std::to_string(kValidationsPerRun) + ", images / " + std::to_string(kImageValidationsPerRun) +
                      ")");
  cmd->add_option("--val-metric", a->val_metric,
                  "What validation judges the weights by: nll (likelihood) or nelbo (default: the model's)")
      ->check(one_of(validation_metric_names(), "validation metric"));
  cmd->add_option("--patience", a->patience,
                  "Stop after this many validations without a better figure (0: never; -1: the model's recommended)");
  cmd->add_option("--checkpoint-every", a->options.checkpoint_every(),
                  "Steps between checkpoints (0: at each validation and at the end)");
  cmd->add_option("--net", a->net, "Network (default: mlp for vectors, unet for images; images also: dit, the diffusion transformer)")
      ->check(one_of(network_names(), "network"));
  cmd->add_option("--base-channels", a->base_channels, "U-Net (and autoencoder) channels of the first level (0: the recipe's: latents " +
                                                               std::to_string(kLatentBaseChannels) + ", images " +
                                                               std::to_string(kImageBaseChannels) + ")");
  cmd->add_option("--patch", a->patch, "DiT: patch side (0: 2, or 1 where 2 does not divide the image); --width and --depth give its hidden "
                  "features (0: 128; 64 on latents) and blocks (-1: 4)");
  cmd->add_option("--heads", a->heads, "DiT: attention heads (0: 4)");
  cmd->add_option("--mlp-ratio", a->mlp_ratio, "DiT: MLP hidden features per token feature (0: 4)");
  cmd->add_option("--image-size", a->image_size, "Resize a folder's images to this size (0: as they are)");
  cmd->add_option("--p-uncond", a->p_uncond,
                  "Conditional models (labelled images, --condition-columns): share of labels and conditions dropped, "
                  "so one network also learns the unconditional model (classifier-free guidance)");
  cmd->add_option("--condition-columns", a->condition_columns,
                  "CSV data: comma-separated names of the columns that condition the model (observations); the other "
                  "columns are generated given them (flow, diffusion, score, vdm; sdegen sample --condition)");
  cmd->add_option("--latent", a->latent,
                  "Images: the run directory of an autoencoder (--model autoencoder); the model learns its "
                  "standardised latents, and its checkpoint embeds the autoencoder (a resumed run uses the one "
                  "it embeds)");
  cmd->add_option("--latent-channels", a->latent_channels,
                  "--model autoencoder: channels of the latent (0: 4); --base-channels b gives the levels' b, 2b, 4b "
                  "(0: 16), and each level after the first halves the image")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kl-weight", a->kl_weight,
                  "--model autoencoder: the KL's weight beside the summed squared error of an image (0: 1e-4)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--nproc", a->nproc,
                  "Data-parallel training: start this many worker processes on this machine (--batch is the global "
                  "batch, split between them; --threads is each worker's). Under an external launcher (torchrun, a "
                  "scheduler) leave it out: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT place each process")
      ->check(positive());
  cmd->add_option("--dist-timeout", a->dist_timeout,
                  "Data-parallel training: seconds to wait for every process at the rendezvous and at each collective "
                  "before stopping with an error")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", a->device,
                  "Device: cpu, or cuda[:N] with a CUDA LibTorch (one process; the fused CPU kernels are skipped there; "
                  "random draws are made on the CPU, so a run resumes on either)");
  cmd->add_option("--out", a->out, "Run directory (checkpoint, log.csv)");
  cmd->add_flag("--resume", a->resume, "Continue from the checkpoint in --out");
  cmd->add_flag("--overwrite", a->overwrite, "Replace a checkpoint already in --out");
  cmd->add_option("--model-config", a->model_config,
                  "JSON object of model settings beyond the flags, e.g. '{\"steps\": 20}' for ode");
  add_json_config(cmd, &a->config_file);
  cmd->callback([a, cmd] {
    apply_json_config(cmd, a->config_file);
    if (!a->model_config.empty()) {
      a->model_overrides = nlohmann::json::parse(a->model_config, nullptr, /*allow_exceptions=*/false);
      SDEGEN_CHECK(a->model_overrides.is_object(), "--model-config must be a JSON object, got '", a->model_config,
                   "'");
    }
    // Checked before any worker starts or anything is written.
    a->on = parse_device(a->device);
    SDEGEN_CHECK(a->on.is_cpu() || (a->nproc == 1 && !distributed_environment()),
                 "--device ", a->device, ": data-parallel training runs on the CPU (Gloo); train on a GPU in one process");
    // With --nproc and no launcher's variables this process is the launcher, not a worker.
    if (a->nproc > 1 && !distributed_environment()) return launch_workers(a->nproc, a->dist_timeout + 5.0);
    a->group = join_from_environment(a->nproc, a->dist_timeout);
    run(*a, *cmd);
  });
}

}  // namespace sdegen::app
