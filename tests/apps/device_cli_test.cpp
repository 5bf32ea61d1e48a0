// --device on train, sample, eval and compare: names that are not devices, and CUDA in a LibTorch
// without it, are refused before anything is written; on the test device (SDEGEN_TEST_DEVICE,
// default cpu; scripts/gpu_check.sh sets cuda) a run trains, resumes on the CPU, and samples and
// evaluates the same there as on the CPU, since the random draws are made on the CPU.
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "apps/cli_support.h"
#include "support/support.h"

namespace sdegen::test {
namespace {

class DeviceCli : public CliTest {};

TEST_F(DeviceCli, UnknownAndUnavailableDevicesAreRefusedBeforeAnythingIsWritten) {
  const std::string run = path("R");
  auto refused = [&](const std::string& args, const std::string& fragment) {
    const Outcome o = run_sdegen(args);
    EXPECT_NE(o.code, 0) << args << "\n" << o.output;
    EXPECT_NE(o.output.find(fragment), std::string::npos) << args << "\n" << o.output;
    EXPECT_FALSE(std::filesystem::exists(run)) << args;
  };
  const std::string train = "train --data moons --steps 5 --width 8 --depth 1 --out " + run + " --device ";
  refused(train + "gpu", "unknown device 'gpu'; use cpu, cuda or cuda:N");
  refused(train + "cpu:1", "there is one CPU device");
  refused("sample --oracle --data moons --n 5 --out " + run + " --device gpu", "unknown device 'gpu'");
  refused("compare --quick --data moons --out " + run + " --device gpu", "unknown device 'gpu'");
  refused("eval --checkpoint " + run + " --device gpu", "unknown device 'gpu'");
  if (!at::hasCUDA()) {
    // This machine's LibTorch (Debian's 1.13) is built without CUDA.
    refused(train + "cuda", "device 'cuda': this LibTorch was built without CUDA");
    refused(train + "cuda:1 --nproc 2", "device 'cuda:1': this LibTorch was built without CUDA");
    refused("sample --oracle --data moons --n 5 --out " + run + " --device cuda", "built without CUDA");
  } else if (torch::cuda::is_available()) {
    refused(train + "cuda --nproc 2", "data-parallel training runs on the CPU (Gloo)");
    refused(train + "cuda:64", " visible (cuda:0");
    refused("compare --quick --data moons --out " + run + " --device cuda", "compare runs on the CPU");
    refused("sample --oracle --data moons --n 5 --out " + run + " --device cuda", "--oracle samples on the CPU");
  }
}

TEST_F(DeviceCli, ARunTrainedOnTheTestDeviceResumesAndSamplesTheSameOnTheCpu) {
  const std::string device = test_device_name(), run = path("R");
  const std::string train = "train --data moons --model flow --width 16 --depth 2 --batch 64 --threads 1 "
                            "--n-train 400 --n-val 100 --out " + run;
  const Outcome first = run_sdegen(train + " --steps 40 --device " + device);
  ASSERT_EQ(first.code, 0) << first.output;
  // The checkpoint's tensors are read onto the model's device, whichever device wrote them.
  const Outcome resumed = run_sdegen(train + " --steps 60 --resume --device cpu");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const Outcome again = run_sdegen(train + " --steps 80 --resume --device " + device);
  ASSERT_EQ(again.code, 0) << again.output;
  const std::string sample = "sample --checkpoint " + run + " --n 50 --solver heun --steps 8 --seed 3 --threads 1 ";
  ASSERT_EQ(run_sdegen(sample + "--device " + device + " --out " + path("on_device.csv")).code, 0);
  ASSERT_EQ(run_sdegen(sample + "--device cpu --out " + path("on_cpu.csv")).code, 0);
  const auto a = read_csv_rows(path("on_device.csv")), b = read_csv_rows(path("on_cpu.csv"));
  ASSERT_EQ(a.size(), 50u);
  ASSERT_EQ(b.size(), 50u);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) worst = std::max(worst, std::abs(a[i][j] - b[i][j]));
  EXPECT_LT(worst, 1e-6) << "float64 on " << device << " against the CPU";
  // eval on the device: the likelihood, the ELBO (its draws made on the CPU) and the sample
  // distances of the CPU's evaluation.
  const std::string eval = "eval --checkpoint " + run + " --n 200 --sample-solver heun --sample-steps 8 --threads 1 ";
  ASSERT_EQ(run_sdegen(eval + "--device " + device + " --out " + path("e_device.json")).code, 0);
  ASSERT_EQ(run_sdegen(eval + "--device cpu --out " + path("e_cpu.json")).code, 0);
  const nlohmann::json e = nlohmann::json::parse(read_file(path("e_device.json")));
  const nlohmann::json f = nlohmann::json::parse(read_file(path("e_cpu.json")));
  for (const char* key : {"log_likelihood", "elbo", "sliced_w", "energy", "straightness"})
    EXPECT_NEAR(e.at(key).get<double>(), f.at(key).get<double>(), 1e-6) << key << " on " << device;
}

// An image model evaluated on the test device: its Frechet distances, class histograms and bits
// per dimension (Hutchinson's probes drawn on the CPU) as on the CPU, to float32's rounding.
TEST_F(DeviceCli, AnImageModelEvaluatesOnTheTestDeviceAsOnTheCpu) {
  const std::string device = test_device_name(), data = write_two_class_folder(path("images")), run = path("R");
  ASSERT_EQ(run_sdegen("train --data " + data + " --model flow --base-channels 8 --batch 8 --steps 6 --threads 1 "
                       "--out " + run + " --device " + device).code, 0);
  ASSERT_EQ(run_sdegen("train-classifier --data " + data + " --epochs 2 --threads 1 --out " + path("clf")).code, 0);
  const std::string eval = "eval --checkpoint " + run + " --classifier " + path("clf") + " --n 10 --sample-solver "
                           "euler --sample-steps 3 --guidance 0,2 --likelihood-n 4 --threads 1 ";
  const Outcome on = run_sdegen(eval + "--device " + device + " --out " + path("e_device.json"));
  ASSERT_EQ(on.code, 0) << on.output;
  ASSERT_EQ(run_sdegen(eval + "--device cpu --out " + path("e_cpu.json")).code, 0);
  const nlohmann::json e = nlohmann::json::parse(read_file(path("e_device.json")));
  const nlohmann::json f = nlohmann::json::parse(read_file(path("e_cpu.json")));
  for (const char* key : {"bits_per_dim", "elbo_bits_per_dim", "fd_floor"})
    EXPECT_NEAR(e.at(key).get<double>(), f.at(key).get<double>(), 1e-3 * std::abs(f.at(key).get<double>()))
        << key << " on " << device;
  for (size_t w = 0; w < 2; ++w) {
    const double fd = f["guidance"][w]["fd"].get<double>();
    EXPECT_NEAR(e["guidance"][w]["fd"].get<double>(), fd, 1e-3 * fd) << "weight " << w << " on " << device;
    EXPECT_EQ(e["guidance"][w]["histogram"], f["guidance"][w]["histogram"]) << "weight " << w << " on " << device;
  }
}

}  // namespace
}  // namespace sdegen::test
