// Device-agnostic code on the test device (SDEGEN_TEST_DEVICE, default cpu; scripts/gpu_check.sh
// sets cuda): a U-Net flow's loss, gradient and guided samples, and a table run's training,
// checkpoint and resume, against the same on the CPU. The random draws are made on the CPU
// (core/shard.h, sample_model_prior), so both sides see the same numbers. On the CPU the two sides
// are one device and these check only the paths; the GPU run is the real check. (LibTorch's meta
// device would let the CPU suite catch a tensor made on the wrong device, but 1.13's Module::to
// refuses to move parameters there.)
#include <filesystem>

#include "sdegen/core/device.h"
#include "sdegen/core/error.h"
#include "sdegen/model/factory.h"
#include "sdegen/net/unet.h"
#include "sdegen/sample/sampler.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"

namespace sdegen::test {
namespace {

UNetOptions tiny_unet(int64_t classes) {
  return UNetOptions(1, 8, 8).base_channels(8).channel_mult({1, 2}).blocks_per_level(1).attention_resolutions({4})
      .groups(4).num_classes(classes);
}

nlohmann::json image_flow_config(int64_t classes) {
  return model_config("flow", 1, {{"net", to_json(tiny_unet(classes))}, {"p_uncond", 0.3}});
}

Condition labels_on(const torch::Device& device, int64_t n, int64_t classes) {
  return Condition(torch::arange(n, torch::kLong).remainder(classes).to(device));
}

TEST(OnTheTestDevice, AnImageFlowsLossGradientAndGuidedSamplesMatchTheCpu) {
  const torch::Device device = parse_device(test_device_name());
  torch::manual_seed(4);
  const ModelPtr cpu = make_model(image_flow_config(3)), there = make_model(image_flow_config(3));
  {
    torch::NoGradGuard no_grad;
    auto a = cpu->parameters(), b = there->parameters();
    for (size_t i = 0; i < a.size(); ++i) {
      a[i].normal_(0.0, 0.2);  // the zero-initialised output conv moves, as after training
      b[i].copy_(a[i]);
    }
  }
  there->to(device);
  const torch::Tensor y = torch::rand({6, 1, 8, 8}, torch::kFloat) * 2 - 1;
  torch::manual_seed(9);
  const double loss_cpu = cpu->loss_and_gradient(y, labels_on(torch::kCPU, 6, 3));
  torch::manual_seed(9);
  const double loss_there = there->loss_and_gradient(y.to(device), labels_on(device, 6, 3));
  EXPECT_NEAR(loss_there, loss_cpu, 1e-4 * std::max(1.0, std::abs(loss_cpu)));
  const auto ga = cpu->parameters(), gb = there->parameters();
  for (size_t i = 0; i < ga.size(); ++i) {
    ASSERT_EQ(gb[i].device(), device);
    const double scale = std::max(1.0, ga[i].grad().abs().max().item<double>());
    EXPECT_LT(max_abs_diff(gb[i].grad().cpu(), ga[i].grad()), 1e-3 * scale) << "parameter " << i;
  }
  cpu->eval(), there->eval();
  torch::NoGradGuard no_grad;
  SamplerOptions s;
  s.solver = "heun";
  s.steps = 6;
  torch::manual_seed(11);
  const torch::Tensor x0_there = sample_model_prior(*there, 6);
  torch::manual_seed(11);
  const torch::Tensor x0_cpu = sample_model_prior(*cpu, 6);
  ASSERT_EQ(x0_there.device(), device);
  EXPECT_TRUE(torch::equal(x0_there.cpu(), x0_cpu));  // drawn on the CPU on both sides
  const Solution a = generate(*cpu, x0_cpu, s, {labels_on(torch::kCPU, 6, 3), 2.0});
  const Solution b = generate(*there, x0_there, s, {labels_on(device, 6, 3), 2.0});
  ASSERT_TRUE(a.ok() && b.ok()) << a.message << b.message;
  EXPECT_EQ(b.x.device(), device);
  EXPECT_LT(max_abs_diff(b.x.cpu(), a.x), 1e-3);
}

TEST(OnTheTestDevice, ATableRunTrainsThereAsOnTheCpuAndItsCheckpointLoadsOnTheCpu) {
  const torch::Device device = parse_device(test_device_name());
  const std::string root = temp_path("device_run");
  std::filesystem::remove_all(root);
  const nlohmann::json config = model_config("flow", 2, {{"net", {{"width", 16}, {"depth", 2}}}});
  torch::manual_seed(3);
  const torch::Tensor data = torch::randn({200, 2}, torch::kDouble) * 0.5 + 1.0;
  TrainOptions o;
  o.steps(30).batch(32).lr(3e-3).checkpoint_every(15).seed(5);
  TrainSetup setup;
  setup.progress = nullptr;
  auto run = [&](const torch::Device& where, const std::string& dir, int64_t steps, bool resume) {
    torch::manual_seed(7);
    const ModelPtr m = make_model(config);
    m->to(where);
    TrainSetup s = setup;
    s.resume = resume;
    return train(m, data, TrainOptions(o).steps(steps), dir, s);
  };
  const TrainResult on_cpu = run(torch::kCPU, root + "/cpu", 30, false);
  const TrainResult there = run(device, root + "/there", 30, false);
  ASSERT_EQ(there.losses.size(), on_cpu.losses.size());
  for (size_t i = 0; i < there.losses.size(); ++i)
    EXPECT_NEAR(there.losses[i], on_cpu.losses[i], 1e-8 * std::max(1.0, std::abs(on_cpu.losses[i]))) << "step " << i;
  // Its checkpoint loads on the CPU, and a run stopped halfway resumes on the device.
  const ModelPtr loaded = make_model(config);
  load_weights(root + "/there", *loaded);
  EXPECT_TRUE(device_of(*loaded).is_cpu());
  const TrainResult half = run(device, root + "/half", 15, false);
  const TrainResult rest = run(device, root + "/half", 30, true);
  ASSERT_EQ(rest.losses.size(), 15u);
  for (size_t i = 0; i < 15; ++i)
    EXPECT_NEAR(rest.losses[i], on_cpu.losses[15 + i], 1e-8 * std::max(1.0, std::abs(on_cpu.losses[15 + i])));
  (void)half;
  std::filesystem::remove_all(root);
}

TEST(ParseDevice, NamesAreCheckedAndCudaNeedsACudaBuild) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  EXPECT_TRUE(parse_device("cpu:0").is_cpu());
  EXPECT_THROW_WITH(parse_device("gpu"), InvalidArgument, "unknown device 'gpu'; use cpu, cuda or cuda:N");
  EXPECT_THROW_WITH(parse_device("meta"), InvalidArgument, "unknown device 'meta'");
  EXPECT_THROW_WITH(parse_device("cpu:2"), InvalidArgument, "there is one CPU device");
  if (!at::hasCUDA()) {
    EXPECT_THROW_WITH(parse_device("cuda"), InvalidArgument, "this LibTorch was built without CUDA");
  } else if (!torch::cuda::is_available()) {
    EXPECT_THROW_WITH(parse_device("cuda"), InvalidArgument, "no CUDA GPU is visible");
  } else {
    EXPECT_EQ(parse_device("cuda"), torch::Device(torch::kCUDA, 0));
    EXPECT_THROW_WITH(parse_device("cuda:999"), InvalidArgument, "visible");
  }
}

}  // namespace
}  // namespace sdegen::test
