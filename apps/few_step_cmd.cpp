// sdegen reflow and sdegen distill: few-step students of a trained teacher (math.md, "Few-step
// generation"). reflow trains a flow on the teacher's own coupling of noise and data (rectified
// flow); distill --method consistency trains a consistency model along the teacher's probability
// flow. Both write an ordinary run directory that sample, eval and plot read.
#include <fmt/core.h>

#include <chrono>
#include <filesystem>

#include "apps/commands.h"
#include "apps/train_args.h"
#include "sdegen/core/check.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/image_evaluate.h"
#include "sdegen/io/csv.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/consistency_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/reflow.h"
#include "sdegen/train/trainer.h"

namespace sdegen::app {
namespace {

// What both commands share: the teacher, the run directory and the student's training.
struct StudentArgs {
  std::string checkpoint;
  std::string out;
  double guidance = 1.0;  // image teachers: default_guidance unless given
  bool guidance_given = false;
  TrainOptions options = TrainOptions().steps(20000).lr(1e-3).decay("cosine").ema_decay(0.0);
  bool resume = false, overwrite = false;
};

void add_student_options(CLI::App* cmd, StudentArgs& a) {
  cmd->add_option("--checkpoint", a.checkpoint, "Run directory of the teacher (sdegen train, or an earlier reflow)")
      ->required();
  cmd->add_option("--out", a.out, "Run directory of the student")->required();
  cmd->add_option("--guidance", a.guidance,
                  "Conditional teachers (classes or --condition-columns): classifier-free guidance weight "
                  "(image teachers: 2 unless the teacher has no unconditional map)");
  cmd->add_option("--steps", a.options.steps(), "Optimiser steps of the student")->check(positive());
  cmd->add_option("--batch", a.options.batch(), "Mini-batch size")->check(positive());
  cmd->add_option("--lr", a.options.lr(), "Peak learning rate")->check(positive());
  cmd->add_option("--decay", a.options.decay(), "Learning-rate decay")->check(one_of(lr_decay_names(), "decay"));
  cmd->add_option("--ema", a.options.ema_decay(), "EMA decay of the weights (0: off)");
  cmd->add_option("--grad-clip", a.options.grad_clip(), "Max gradient norm (0: off)");
  cmd->add_option("--seed", a.options.seed(), "Random seed (pairs or noise, batches)")->check(seed_value());
  cmd->add_option("--threads", a.options.threads(), "Intra-op threads")->check(thread_count());
  cmd->add_option("--log-every", a.options.log_every(), "Steps between log rows")->check(positive());
  cmd->add_option("--checkpoint-every", a.options.checkpoint_every(), "Steps between checkpoints (0: only at the end)");
  cmd->add_flag("--resume", a.resume, "Continue from the checkpoint in --out");
  cmd->add_flag("--overwrite", a.overwrite, "Replace a checkpoint already in --out");
}

// The teacher's guidance: --guidance, or for an image teacher the weight its samples use by default.
void set_teacher_guidance(StudentArgs& a, const TrainedModel& teacher) {
  SDEGEN_CHECK(!teacher.latent, "'", a.checkpoint, "' is a latent model; reflow and distillation of latent models ",
               "are not built yet (their pairs and students would live in its latent space)");
  if (!a.guidance_given && !teacher.images.is_null()) a.guidance = default_guidance(*teacher.model);
}

// Refused before any expensive work, as train() would refuse it after.
void check_out_dir(const StudentArgs& a) {
  SDEGEN_CHECK(a.resume || a.overwrite || !has_checkpoint(a.out), "output directory '", a.out,
               "' already holds a checkpoint; pass --resume or --overwrite, or choose another directory");
  SDEGEN_CHECK(!a.resume || has_checkpoint(a.out), "cannot resume: no checkpoint in '", a.out, "'");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- reflow ----

struct ReflowArgs {
  StudentArgs student;
  int64_t pairs = 10000;
  SamplerOptions solver = [] {
    SamplerOptions o;
    o.solver = "dopri5";
    return o;
  }();
  bool warm_start = true;
};

const char* kPairsFile = "pairs.pt";

// pairs.pt: [z, x], [z, x, labels], or [z, x, labels or an empty tensor, conditions].
void save_pairs(const std::string& dir, const ReflowPairs& p) {
  std::filesystem::create_directories(dir);
  const std::string path = (std::filesystem::path(dir) / kPairsFile).string(), tmp = path + ".tmp";
  std::vector<torch::Tensor> v = {p.z, p.x};
  if (p.labels.defined() || p.conditions.defined())
    v.push_back(p.labels.defined() ? p.labels : torch::empty({0}, torch::kLong));
  if (p.conditions.defined()) v.push_back(p.conditions);
  torch::save(v, tmp);
  std::filesystem::rename(tmp, path);
}

ReflowPairs load_pairs(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kPairsFile).string();
  SDEGEN_CHECK(std::filesystem::exists(path), "cannot resume the reflow: '", path, "' (its pairs) is missing");
  std::vector<torch::Tensor> v;
  try {
    torch::load(v, path);
  } catch (const c10::Error& e) {
    throw IoError("cannot read the reflow pairs '" + path + "': " + e.what_without_backtrace());
  }
  SDEGEN_CHECK(v.size() >= 2 && v.size() <= 4, "'", path, "' holds ", v.size(), " tensors, not reflow pairs");
  ReflowPairs p;
  p.z = v[0], p.x = v[1];
  if (v.size() >= 3 && v[2].numel() > 0) p.labels = v[2];
  if (v.size() == 4) p.conditions = v[3];
  return p;
}

// The straightness of a flow model from n prior draws (vectors: 1000; images: 16, each a 100-step
// solve), at uniformly drawn labels with guidance w for a class-conditional model, or at the first
// n of `conditions` (standardised rows) for a model with a condition vector.
double straightness_of(const GenerativeModel& model, double w, const torch::Tensor& conditions) {
  int64_t n = model.shape().size() > 1 ? 16 : 1000;
  if (conditions.defined()) n = std::min(n, conditions.size(0));
  torch::NoGradGuard no_grad;
  const torch::Tensor x0 = sample_model_prior(model, n);
  const int64_t classes = model.num_classes();
  if (model.condition_dim() > 0) {
    Condition c;
    c.vector = conditions.narrow(0, 0, n);
    return flow_straightness(model, x0, 100, c, w);
  }
  if (classes == 0) return flow_straightness(model, x0);
  return flow_straightness(model, x0, 100, Condition(torch::randint(classes, {n}, torch::kLong)), w);
}

// A teacher trained with --condition-columns: n observations drawn with replacement from its
// training file's condition columns, standardised as it takes them.
torch::Tensor teacher_observations(const TrainedModel& t, int64_t n) {
  SDEGEN_CHECK(!t.data.empty() && std::filesystem::exists(t.data), "the teacher is conditioned on ",
               join(t.condition_columns), ", and reflow draws its pairs at the observations of its training file '",
               t.data, "', which is not there");
  const torch::Tensor observed = select_columns(load_csv(t.data), t.condition_columns, "the teacher's training file");
  const torch::Tensor rows = torch::randint(observed.size(0), {n}, torch::TensorOptions(torch::kLong));
  return t.condition_standardizer.transform(observed.index_select(0, rows));
}

void run_reflow(ReflowArgs& a) {
  StudentArgs& s = a.student;
  SDEGEN_CHECK(a.pairs >= 1, "--pairs must be at least 1, got ", a.pairs);
  check_out_dir(s);
  const TrainedModel teacher = load_trained_model(s.checkpoint);
  SDEGEN_CHECK(teacher.model->has_probability_flow(), "reflow couples prior draws with the ends of the teacher's ",
               "probability-flow ODE; the '", teacher.model->kind(), "' model in '", s.checkpoint, "' has none");
  set_teacher_guidance(s, teacher);
  torch::manual_seed(s.options.seed());
  ReflowPairs pairs;
  if (s.resume) {
    pairs = load_pairs(s.out);
  } else {
    const auto start = std::chrono::steady_clock::now();
    fmt::print("drawing {} pairs through the teacher's probability flow with {}...\n", a.pairs, a.solver.solver);
    std::fflush(stdout);
    // Images in batches of 50, which are faster per image on the CPU (ImageEvalOptions::batch).
    const int64_t batch = teacher.images.is_null() ? 1000 : ImageEvalOptions().batch;
    const auto progress = [&](int64_t drawn) {
      fmt::print(stderr, "\r  {}/{} pairs, {:.0f} s", drawn, a.pairs, seconds_since(start));
      if (drawn == a.pairs) fmt::print(stderr, "\n");
    };
    const torch::Tensor observations =
        teacher.model->condition_dim() > 0 ? teacher_observations(teacher, a.pairs) : torch::Tensor();
    pairs = draw_reflow_pairs(*teacher.model, a.pairs, a.solver, s.guidance, batch, progress, observations);
    fmt::print("  {} teacher evaluations over all batches, {:.1f} s\n", pairs.nfe, seconds_since(start));
    save_pairs(s.out, pairs);
  }
  ModelPtr student = make_model(reflow_student_config(*teacher.model));
  const bool warm = !s.resume && a.warm_start && warm_start_from_teacher(*student, *teacher.model);
  TrainSetup setup;
  setup.sources = pairs.z;
  setup.labels = pairs.labels;
  setup.conditions = pairs.conditions;
  setup.resume = s.resume;
  setup.overwrite = s.overwrite;
  nlohmann::json extra = teacher.config.at("extra");
  // Liu et al.'s count: the teacher's flow from independent draws is the 1-rectified flow, so its
  // first reflow gives the 2-rectified one.
  const int64_t k = (extra.contains("reflow") ? extra["reflow"].value("k", 1) : 1) + 1;
  extra["reflow"] = {{"teacher", s.checkpoint}, {"k", k},        {"pairs", a.pairs},
                     {"solver", a.solver.solver}, {"guidance", s.guidance}, {"warm_start", warm}};
  setup.extra = extra;
  const TrainResult r = train(student, pairs.x, s.options, s.out, setup);
  fmt::print("{}-rectified flow from {} ({} pairs{}): {} steps in {:.1f} s, final loss {:.4f}\n", k, s.checkpoint,
             a.pairs, warm ? ", started from the teacher's weights" : "", r.steps, r.seconds, r.final_loss);
  const TrainedModel trained = load_trained_model(s.out);
  const double before = straightness_of(*teacher.model, s.guidance, pairs.conditions),
               after = straightness_of(*trained.model, 1.0, pairs.conditions);
  fmt::print("straightness (0: straight paths): teacher {:.5f}, student {:.5f}\n", before, after);
  fmt::print("checkpoint: {}\n", r.checkpoint);
}

// ---- distill ----

struct DistillArgs {
  StudentArgs student;
  std::string method = "consistency";
  std::string data;         // empty: the teacher's
  int64_t n_train = 10000;  // rows drawn from a built-in density
  int64_t levels = 18;      // N: the discretisation's levels
  SamplerOptions step = [] {
    SamplerOptions o;
    o.solver = "heun";
    o.steps = 1;
    return o;
  }();
  std::string distance = "pseudo-huber";
  std::string init = "fresh";  // fresh | teacher
};

// What distillation noises: the teacher's own data (or --data), in the teacher's units; for an
// image teacher its training images, with their labels when it is class-conditional.
struct DistillData {
  torch::Tensor x, labels;
};

DistillData distill_data(const DistillArgs& a, const TrainedModel& t) {
  const std::string spec = a.data.empty() ? t.data : a.data;
  SDEGEN_CHECK(!spec.empty(), "the teacher records no data; pass --data SPEC|FILE.csv");
  if (!t.images.is_null()) {
    SDEGEN_CHECK(is_image_data(spec), "--data '", spec, "': an image teacher is distilled on fashion-mnist or a ",
                 "folder of PNG images");
    const std::vector<int64_t> shape = t.model->shape();
    const ImageData images = load_training_images(spec, spec == "fashion-mnist" ? 0 : shape.back());
    SDEGEN_CHECK(images.shape() == shape, "'", spec, "' holds images of ", c10::IntArrayRef(images.shape()),
                 ", the teacher generates ", c10::IntArrayRef(shape));
    const int64_t classes = t.model->num_classes();
    SDEGEN_CHECK(classes == 0 || images.num_classes() == classes, "the teacher is conditional on ", classes,
                 " classes; '", spec, "' has ", images.num_classes());
    return {images.x.to(t.model->parameters().front().scalar_type()), classes > 0 ? images.labels : torch::Tensor()};
  }
  torch::Tensor x;
  if (is_csv_name(spec)) {
    x = load_csv(spec).x;
  } else {
    check_data_spec(spec, /*csv_ok=*/false);
    x = make_density(spec)->sample(a.n_train);
  }
  check_dimension(t.model->dim(), x.size(1), spec);
  return {t.standardizer.transform(x.to(torch::kDouble)), torch::Tensor()};
}

void run_distill(DistillArgs& a) {
  StudentArgs& s = a.student;
  check_out_dir(s);
  const TrainedModel teacher = load_trained_model(s.checkpoint);
  set_teacher_guidance(s, teacher);
  SDEGEN_CHECK(teacher.model->condition_dim() == 0, "'", s.checkpoint, "' was trained with --condition-columns (",
               join(teacher.condition_columns), "); a consistency student takes no condition vector, so its ",
               "distillation is not built. sdegen reflow trains a conditional few-step student");
  auto affine = std::dynamic_pointer_cast<const AffineModel>(teacher.model);
  SDEGEN_CHECK(teacher.model->has_probability_flow() && affine,
               "consistency distillation follows the teacher's probability flow from points x_t = a y + b eps of its "
               "path; the '", teacher.model->kind(), "' model in '", s.checkpoint, "' has ",
               teacher.model->has_probability_flow() ? "no affine path (distil flow, diffusion or score)"
                                                     : "no probability flow");
  SDEGEN_CHECK(a.levels >= 2, "--levels must be at least 2, got ", a.levels);
  torch::manual_seed(s.options.seed());
  const DistillData data = distill_data(a, teacher);
  ConsistencyOptions o;
  // Vectors are standardised (sigma_data 1); pixels in [-1, 1] are not, so their spread is measured.
  if (!teacher.images.is_null()) o.sigma_data = data.x.std().item<double>();
  o.schedule = affine->options().schedule;
  o.schedule_options = affine->options().schedule_options;
  o.net = affine->options().net;
  o.dtype = affine->options().dtype;
  o.method = "distillation";
  o.levels_start = a.levels - 1;
  o.levels_end = a.levels - 1;
  o.level_sampling = "uniform";
  o.distance = a.distance;
  if (a.init == "teacher") {
    o.inner = "prediction";
    o.prediction = prediction_name(affine->options().prediction);
  }
  auto student = std::make_shared<ConsistencyModel>(o);
  if (a.init == "teacher" && !s.resume) student->start_from(*affine);
  student->set_teacher(affine, a.step, s.guidance);
  TrainSetup setup;
  setup.labels = data.labels;
  setup.resume = s.resume;
  setup.overwrite = s.overwrite;
  nlohmann::json extra = teacher.config.at("extra");
  extra["distill"] = {{"teacher", s.checkpoint}, {"method", a.method},   {"levels", a.levels},
                      {"solver", a.step.solver},  {"solver_steps", a.step.steps}, {"guidance", s.guidance}, {"init", a.init}};
  setup.extra = extra;
  const TrainResult r = train(student, data.x, s.options, s.out, setup);
  fmt::print("consistency distillation of {} ({} levels, teacher step {} x {}): {} steps in {:.1f} s, final loss "
             "{:.5f}\n",
             s.checkpoint, a.levels, a.step.solver, a.step.steps, r.steps, r.seconds, r.final_loss);
  fmt::print("checkpoint: {}\n", r.checkpoint);
}

}  // namespace

void register_reflow(CLI::App& app) {
  auto a = std::make_shared<ReflowArgs>();
  CLI::App* cmd = app.add_subcommand(
      "reflow", "Rectified flow: train a flow on the teacher's coupling of noise and data (repeat for k-rectified)");
  cmd->option_defaults()->always_capture_default();
  add_student_options(cmd, a->student);
  cmd->add_option("--pairs", a->pairs, "Pairs (z, ODE(z)) drawn through the teacher")->check(positive());
  cmd->add_option("--solver", a->solver.solver, "ODE solver that draws the pairs")
      ->check(one_of(ode_sampler_names(), "ODE solver"));
  cmd->add_option("--solver-steps", a->solver.steps, "Steps of a fixed-step pair solver")->check(positive());
  cmd->add_option("--rtol", a->solver.adaptive.rtol, "dopri5 relative tolerance")->check(positive());
  cmd->add_option("--atol", a->solver.adaptive.atol, "dopri5 absolute tolerance")->check(positive());
  cmd->add_option("--warm-start", a->warm_start,
                  "Start from the teacher's weights when it is a velocity flow on the linear path (Liu et al.)");
  cmd->callback([a, cmd] {
    a->student.guidance_given = cmd->count("--guidance") > 0;
    run_reflow(*a);
  });
}

void register_distill(CLI::App& app) {
  auto a = std::make_shared<DistillArgs>();
  CLI::App* cmd = app.add_subcommand(
      "distill", "Distil a teacher with a probability flow into a few-step student (consistency distillation)");
  cmd->option_defaults()->always_capture_default();
  add_student_options(cmd, a->student);
  cmd->add_option("--method", a->method, "Distillation method")->check(one_of({"consistency"}, "method"));
  cmd->add_option("--data", a->data, "Data to noise (default: the teacher's; a built-in density or a CSV file; image teachers: "
                  "fashion-mnist or a folder of PNG images)");
  cmd->add_option("--n-train", a->n_train, "Rows drawn from a built-in density")->check(positive());
  cmd->add_option("--levels", a->levels, "Levels N of the discretisation (EDM's rho = 7 grid in sigma = b / a)")
      ->check(positive());
  cmd->add_option("--teacher-solver", a->step.solver, "ODE solver of the teacher's step between adjacent levels")
      ->check(one_of(ode_sampler_names(), "ODE solver"));
  cmd->add_option("--teacher-steps", a->step.steps, "Steps of that solver between adjacent levels")->check(positive());
  cmd->add_option("--init", a->init,
                  "The student's start: fresh weights behind EDM's coefficients, or the teacher's network and "
                  "weights (its data prediction between the coefficients)")
      ->check(one_of({"fresh", "teacher"}, "init"));
  cmd->add_option("--distance", a->distance, "Distance between the student's outputs")
      ->check(one_of({"pseudo-huber", "l2"}, "distance"));
  cmd->callback([a, cmd] {
    a->student.guidance_given = cmd->count("--guidance") > 0;
    run_distill(*a);
  });
}

}  // namespace sdegen::app
