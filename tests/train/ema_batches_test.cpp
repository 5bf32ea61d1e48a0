// The moving average of the weights and the mini-batch sampler.
#include <torch/torch.h>

#include <set>
#include <sstream>

#include "sdegen/core/error.h"
#include "sdegen/train/batches.h"
#include "sdegen/train/ema.h"
#include "support/support.h"

namespace sdegen {
namespace {

struct Scalar : torch::nn::Module {
  explicit Scalar(double w0 = 0.0, int64_t size = 1) {
    w = register_parameter("w", torch::full({size}, w0));
    count = register_buffer("count", torch::zeros({1}));
  }
  void set(double value) {
    torch::NoGradGuard no_grad;
    w.fill_(value);
    count.add_(1);
  }
  torch::Tensor w, count;
};

TEST(Ema, PlainDecayOnAScalar) {
  Scalar m(0.0);
  Ema ema(m, 0.9, /*warmup=*/false);
  m.set(1.0);
  ema.update(m);
  EXPECT_NEAR(ema.average("w").item<double>(), 0.1, 1e-15);  // 0.9 * 0 + 0.1 * 1
  m.set(2.0);
  ema.update(m);
  EXPECT_NEAR(ema.average("w").item<double>(), 0.29, 1e-15);  // 0.9 * 0.1 + 0.1 * 2
  EXPECT_EQ(ema.updates(), 2);
}

TEST(Ema, WarmupUsesTheSmallerDecayEarlyOn) {
  Scalar m(0.0);
  Ema ema(m, 0.9);
  EXPECT_DOUBLE_EQ(ema.next_decay(), 0.1);  // (1 + 0) / (10 + 0)
  m.set(1.0);
  ema.update(m);
  EXPECT_NEAR(ema.average("w").item<double>(), 0.9, 1e-15);  // 0.1 * 0 + 0.9 * 1
  EXPECT_DOUBLE_EQ(ema.next_decay(), 2.0 / 11.0);
  m.set(2.0);
  ema.update(m);
  EXPECT_NEAR(ema.average("w").item<double>(), 2.0 / 11.0 * 0.9 + 9.0 / 11.0 * 2.0, 1e-15);
  // (1 + n) / (10 + n) reaches 0.9 at n = 80; from there on the decay is 0.9.
  for (int i = 0; i < 100; ++i) ema.update(m);
  EXPECT_DOUBLE_EQ(ema.next_decay(), 0.9);
}

TEST(Ema, SwapTwiceRestoresAndCopyToWrites) {
  Scalar m(0.0);
  Ema ema(m, 0.5, false);
  m.set(4.0);
  ema.update(m);  // average 2, buffer count 1 copied
  m.set(6.0);     // model 6, count 2
  ema.swap(m);
  EXPECT_EQ(m.w.item<double>(), 2.0);
  EXPECT_EQ(m.count.item<double>(), 1.0);
  EXPECT_EQ(ema.average("w").item<double>(), 6.0);
  ema.swap(m);
  EXPECT_EQ(m.w.item<double>(), 6.0);
  EXPECT_EQ(m.count.item<double>(), 2.0);
  EXPECT_EQ(ema.average("w").item<double>(), 2.0);
  ema.copy_to(m);
  EXPECT_EQ(m.w.item<double>(), 2.0);
  EXPECT_FALSE(m.w.grad().defined());
  EXPECT_THROW_WITH(ema.average("v"), InvalidArgument, "no parameter named 'v'; valid: w");
}

TEST(Ema, SaveLoadRoundTripAndLayoutCheck) {
  Scalar m(1.0);
  Ema ema(m, 0.75, false);
  m.set(3.0);
  ema.update(m);
  std::stringstream stream;
  {
    torch::serialize::OutputArchive out;
    ema.save(out);
    out.save_to(stream);
  }
  Scalar other(0.0);
  Ema restored(other, 0.5, true);
  {
    torch::serialize::InputArchive in;
    in.load_from(stream);
    restored.load(in);
  }
  EXPECT_EQ(restored.decay(), 0.75);
  EXPECT_FALSE(restored.warmup());
  EXPECT_EQ(restored.updates(), 1);
  EXPECT_EQ(restored.average("w").item<double>(), 1.5);

  Scalar wider(0.0, 3);
  Ema mismatched(wider, 0.5);
  stream.seekg(0);
  torch::serialize::InputArchive in;
  in.load_from(stream);
  EXPECT_THROW_WITH(mismatched.load(in), InvalidArgument, "'w' is");
  EXPECT_THROW_WITH(mismatched.update(m), InvalidArgument, "parameter 0 is 'w'");
}

TEST(BatchSampler, EachEpochIsAPermutation) {
  BatchSampler sampler(10, 4, 5);
  std::vector<int64_t> seen;
  for (int i = 0; i < 5; ++i) {  // 20 indices: two whole epochs
    const torch::Tensor b = sampler.next();
    ASSERT_EQ(b.sizes(), (std::vector<int64_t>{4}));
    for (int64_t j = 0; j < 4; ++j) seen.push_back(b[j].item<int64_t>());
  }
  EXPECT_EQ(sampler.epoch(), 1);
  const std::set<int64_t> first(seen.begin(), seen.begin() + 10), second(seen.begin() + 10, seen.end());
  EXPECT_EQ(first.size(), 10u);
  EXPECT_EQ(second.size(), 10u);
  EXPECT_EQ(*first.rbegin(), 9);
  EXPECT_NE(std::vector<int64_t>(seen.begin(), seen.begin() + 10),
            std::vector<int64_t>(seen.begin() + 10, seen.end()));
}

TEST(BatchSampler, CopiesAndSavedStatesContinueIdentically) {
  BatchSampler a(7, 3, 11);
  a.next();
  BatchSampler copy = a;
  std::stringstream stream;
  {
    torch::serialize::OutputArchive out;
    a.save(out);
    out.save_to(stream);
  }
  BatchSampler loaded(7, 3, 999);
  torch::serialize::InputArchive in;
  in.load_from(stream);
  loaded.load(in);
  for (int i = 0; i < 6; ++i) {
    const torch::Tensor expected = a.next();
    EXPECT_TRUE(torch::equal(copy.next(), expected));
    EXPECT_TRUE(torch::equal(loaded.next(), expected));
  }
  BatchSampler other_rows(8, 3, 11);
  stream.seekg(0);
  torch::serialize::InputArchive again;
  again.load_from(stream);
  EXPECT_THROW_WITH(other_rows.load(again), InvalidArgument, "is for 7 training rows, this run has 8");
}

TEST(BatchSampler, BatchLargerThanTheDataSpansEpochs) {
  BatchSampler sampler(3, 7, 0);
  const torch::Tensor b = sampler.next();
  EXPECT_EQ(b.size(0), 7);
  EXPECT_EQ(b.max().item<int64_t>(), 2);
  EXPECT_EQ(sampler.epoch(), 2);
}

}  // namespace
}  // namespace sdegen
