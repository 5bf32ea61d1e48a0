// The stable API (sdegen/sdegen.h) on runs the program trained: loading, sampling with a seed,
// labels and guidance, log-likelihoods, refusals, and concurrent calls on one Model.
#include <fstream>
#include <random>
#include <thread>

#include "apps/cli_support.h"
#include "sdegen/core/device.h"
#include "sdegen/core/error.h"
#include "sdegen/data/density.h"
#include "sdegen/sdegen.h"

namespace sdegen {
namespace {

using test::CliTest;
using test::run_sdegen;

class ModelApi : public CliTest {
 protected:
  std::string table_run() {
    const std::string run = path("table");
    const test::Outcome o = run_sdegen("train --data laplace5 --model flow --steps 300 --n-val 0 --checkpoint-every "
                                       "300 --threads 1 --out " + run);
    EXPECT_EQ(o.code, 0) << o.output;
    return run;
  }
};

TEST_F(ModelApi, LoadsSamplesAndScoresATable) {
  const Model model = Model::load(table_run());
  EXPECT_EQ(model.kind(), "flow");
  EXPECT_EQ(model.shape(), (std::vector<int64_t>{1}));
  EXPECT_EQ(model.num_classes(), 0);
  EXPECT_FALSE(model.is_image());
  SampleOptions o;
  o.solver = "rk4";
  o.seed = 3;
  const torch::Tensor x = model.sample(400, o);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{400, 1}));
  EXPECT_EQ(x.scalar_type(), torch::kDouble);
  // laplace5: five Laplace(mu, 1) at mu = -8, -4, 0, 4, 8, in data units (not the standardised
  // ones the model learned in, where the standard deviation is 1): mean 0, standard deviation
  // sqrt(32 + 2) = 5.83, within what 300 steps of training leave.
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 1.5);
  EXPECT_NEAR(x.std().item<double>(), std::sqrt(34.0), 1.0);
  EXPECT_TRUE(torch::equal(model.sample(400, o), x));  // the seed fixes the samples
  o.seed = 4;
  EXPECT_FALSE(torch::equal(model.sample(400, o), x));
  // On fresh data, the model's cross-entropy is close to (and, up to noise, above) the density's
  // own entropy; points far outside the data score far lower.
  torch::manual_seed(5);
  const DensityPtr truth = make_density("laplace5");
  const torch::Tensor data = truth->sample(2000);
  const torch::Tensor logp = model.log_likelihood(data);
  ASSERT_EQ(logp.sizes(), (std::vector<int64_t>{2000}));
  const double cross_entropy = -logp.mean().item<double>(), entropy = -truth->log_prob(data).mean().item<double>();
  EXPECT_GT(cross_entropy, entropy - 0.05);
  EXPECT_LT(cross_entropy, entropy + 0.3);
  EXPECT_LT(model.log_likelihood(torch::full({3, 1}, 15.0, torch::kDouble)).max().item<double>(), -6.0);
}

// Device-agnostic (SDEGEN_TEST_DEVICE; the CPU suite runs it with the CPU on both sides): a run
// loaded onto the test device samples and scores as the CPU does, and hands results back on the CPU.
TEST_F(ModelApi, LoadsOntoTheTestDeviceAndAgreesWithTheCpu) {
  const std::string run = table_run();
  EXPECT_THROW_WITH(Model::load(run, "gpu"), InvalidArgument, "unknown device 'gpu'");
  const Model cpu = Model::load(run), on = Model::load(run, test::test_device_name());
  EXPECT_EQ(cpu.device(), "cpu");
  EXPECT_EQ(on.device(), parse_device(test::test_device_name()).str());
  SampleOptions o;
  o.seed = 7;
  const torch::Tensor x = on.sample(300, o);
  EXPECT_TRUE(x.device().is_cpu());
  EXPECT_EQ(x.scalar_type(), torch::kDouble);
  EXPECT_LT(test::max_abs_diff(x, cpu.sample(300, o)), 1e-6);  // one seed, one start, on either device
  const torch::Tensor points = torch::linspace(-9.0, 9.0, 40, torch::kDouble).unsqueeze(1);
  const torch::Tensor logp = on.log_likelihood(points);
  EXPECT_TRUE(logp.device().is_cpu());
  EXPECT_LT(test::max_abs_diff(logp, cpu.log_likelihood(points)), 1e-6);
  if (!parse_device(on.device()).is_cpu())
    EXPECT_THROW_WITH(on.fast_sampler(), InvalidArgument, "raw host buffers");
}

TEST_F(ModelApi, ConcurrentCallsOnOneModelGiveTheSequentialResults) {
  const Model model = Model::load(table_run());
  const torch::Tensor points = torch::linspace(2.0, 8.0, 50, torch::kDouble).unsqueeze(1);
  auto work = [&](uint64_t seed) {
    SampleOptions o;
    o.solver = "heun";
    o.seed = seed;
    return std::make_pair(model.sample(200, o), model.log_likelihood(points + 0.01 * static_cast<double>(seed)));
  };
  std::vector<std::pair<torch::Tensor, torch::Tensor>> sequential, concurrent(6);
  for (uint64_t k = 0; k < 6; ++k) sequential.push_back(work(k));
  std::vector<std::thread> threads;
  for (uint64_t k = 0; k < 6; ++k) threads.emplace_back([&, k] { concurrent[k] = work(k); });
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < 6; ++k) {
    EXPECT_LT(test::max_abs_diff(concurrent[k].first, sequential[k].first), 1e-12) << "samples, seed " << k;
    EXPECT_LT(test::max_abs_diff(concurrent[k].second, sequential[k].second), 1e-9) << "likelihood, seed " << k;
  }
}

TEST_F(ModelApi, SamplesImagesOfAClassWithGuidance) {
  // 8x8 images: class a bright on the left half, class b on the right.
  const std::string root = test::write_two_class_folder(path("images"));
  const std::string run = path("run");
  const test::Outcome o = run_sdegen("train --data " + root + " --model flow --base-channels 8 --batch 8 --steps 150 " +
                                     "--lr 2e-3 --threads 1 --out " + run);
  ASSERT_EQ(o.code, 0) << o.output;
  const Model model = Model::load(run);
  EXPECT_TRUE(model.is_image());
  EXPECT_EQ(model.shape(), (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(model.num_classes(), 2);
  SampleOptions s;
  s.guidance = 2.0;
  s.label = 0;
  const torch::Tensor a = model.sample(16, s);
  s.label = 1;
  const torch::Tensor b = model.sample(16, s);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{16, 1, 8, 8}));
  EXPECT_EQ(a.scalar_type(), torch::kFloat);
  // The class decides which half is bright.
  auto left_minus_right = [](const torch::Tensor& x) {
    return (x.narrow(3, 0, 4).mean() - x.narrow(3, 4, 4).mean()).item<double>();
  };
  EXPECT_GT(left_minus_right(a), 0.3);
  EXPECT_LT(left_minus_right(b), -0.3);
  s.label = 2;
  EXPECT_THROW(model.sample(4, s), InvalidArgument);
  // The likelihood of images (Hutchinson's estimate above 16 dimensions) is finite.
  EXPECT_TRUE(model.log_likelihood(a.narrow(0, 0, 2)).isfinite().all().item<bool>());
}

TEST_F(ModelApi, RefusesWhatItCannotDoByName) {
  EXPECT_THROW(Model::load(path("nowhere")), IoError);
  const Model model = Model::load(table_run());
  SampleOptions o;
  o.label = 0;
  EXPECT_THROW_WITH(model.sample(3, o), InvalidArgument, "label must be -1");
  EXPECT_THROW_WITH(model.log_likelihood(torch::zeros({3, 2}, torch::kDouble)), InvalidArgument,
                    "points must have shape [n, *shape] with shape [1], got [3, 2]");
  EXPECT_THROW_WITH(model.log_likelihood(torch::full({2, 1}, NAN, torch::kDouble)), InvalidArgument,
                    "finite floating-point");
  o.label = -1;
  o.solver = "nonsense";
  EXPECT_THROW(model.sample(3, o), InvalidArgument);
  EXPECT_THROW(model.sample(0), InvalidArgument);
}

}  // namespace
}  // namespace sdegen

namespace sdegen {
namespace {

// A table whose y follows its column c in {-2, 2} (noise 0.2), trained with --condition-columns c:
// Model::sample and the fast sampler both follow the observation given in data units.
TEST_F(ModelApi, ConditionColumnsSteerSampleAndTheFastSampler) {
  {
    std::ofstream csv(path("table.csv"));
    csv << "c,y\n";
    std::mt19937 rng(2);
    std::normal_distribution<double> noise(0.0, 0.2);
    for (int i = 0; i < 400; ++i) {
      const double c = i % 2 ? 2.0 : -2.0;
      csv << c << "," << 10.0 + c + noise(rng) << "\n";  // y in data units around 8 and 12
    }
  }
  const std::string run = path("conditional");
  const test::Outcome o = run_sdegen("train --data " + path("table.csv") + " --condition-columns c --model flow "
                                     "--steps 800 --batch 128 --width 32 --lr 3e-3 --threads 1 --out " + run);
  ASSERT_EQ(o.code, 0) << o.output;
  const Model model = Model::load(run);
  EXPECT_EQ(model.columns(), (std::vector<std::string>{"y"}));
  EXPECT_EQ(model.condition_columns(), (std::vector<std::string>{"c"}));
  ChunkSampler fast = model.fast_sampler({"heun", 5, 1.0, 7});
  EXPECT_EQ(fast.dim(), 1);
  EXPECT_EQ(fast.condition_dim(), 1);
  EXPECT_EQ(fast.evaluations(), 10);
  for (const double c : {-2.0, 2.0}) {
    SampleOptions s;
    s.condition = {c};
    EXPECT_NEAR(model.sample(300, s).mean().item<double>(), 10.0 + c, 0.3) << "c = " << c;
    double sum = 0;
    for (int i = 0; i < 300; ++i) {
      double y = 0;
      fast.sample(&c, &y);
      sum += y;
    }
    EXPECT_NEAR(sum / 300, 10.0 + c, 0.3) << "fast, c = " << c;
  }
  SampleOptions wrong;
  wrong.condition = {1.0, 2.0};
  EXPECT_THROW_WITH(model.sample(3, wrong), InvalidArgument, "conditioned on 1 values (c), got 2");
  const double nan = std::nan("");
  double y = 0;
  EXPECT_THROW_WITH(fast.sample(&nan, &y), InvalidArgument, "observation 0 is nan");
  EXPECT_THROW_WITH(Model::load(table_run()).sample(3, SampleOptions{"heun", 20, -1, 1.0, 0, {1.0}}),
                    InvalidArgument, "takes no condition");
  // log p(y | c): y = 12 is likely given c = 2 (N(12, 0.2^2): 0.69 nats at its mode) and
  // unlikely given c = -2 (20 standard deviations out, where the model's tail is far fatter than the
  // data's but still low); unconditionally it is about log 2 lower.
  const torch::Tensor at12 = torch::full({2, 1}, 12.0, torch::kDouble);
  const torch::Tensor given = model.log_likelihood(at12, torch::tensor({2.0, -2.0}, torch::kDouble).unsqueeze(1));
  const double mode = -0.5 * std::log(2 * M_PI * 0.04);
  EXPECT_NEAR(given[0].item<double>(), mode, 0.35);
  EXPECT_LT(given[1].item<double>(), given[0].item<double>() - 5.0);
  EXPECT_NEAR(model.log_likelihood(at12)[0].item<double>(), mode - std::log(2.0), 0.35);
  EXPECT_THROW_WITH(model.log_likelihood(at12, torch::zeros({2, 2}, torch::kDouble)), InvalidArgument,
                    "observations must be [n, 1] for n = 2 points (c), got [2, 2]");
  EXPECT_THROW_WITH(model.log_likelihood(at12, torch::full({2, 1}, NAN, torch::kDouble)), InvalidArgument,
                    "observations must be finite");
  // A reflowed student learned no unconditional model (no condition dropout): without an
  // observation, sample and log_likelihood are refused rather than answered from the untrained null.
  const test::Outcome r = run_sdegen("reflow --checkpoint " + run + " --pairs 200 --solver rk4 --solver-steps 8 "
                                     "--steps 20 --threads 1 --out " + path("student"));
  ASSERT_EQ(r.code, 0) << r.output;
  const Model student = Model::load(path("student"));
  EXPECT_THROW_WITH(student.sample(3), InvalidArgument, "sample: the model was trained without condition dropout");
  EXPECT_THROW_WITH(student.log_likelihood(at12), InvalidArgument, "give the observation (c)");
  SampleOptions at2;
  at2.condition = {2.0};
  EXPECT_EQ(student.sample(3, at2).sizes(), (std::vector<int64_t>{3, 1}));
}

}  // namespace
}  // namespace sdegen
