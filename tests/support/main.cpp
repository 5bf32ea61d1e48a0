// Test entry point: one intra-op thread per test process (ctest runs tests in parallel) and
// double precision unless a test asks otherwise.
#include <gtest/gtest.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
  torch::manual_seed(0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
