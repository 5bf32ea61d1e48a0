// Every pair of prediction conversions round-trips, and each conversion satisfies its defining
// relation from shared/docs/math.md, for every named schedule in double precision.
#include "sdegen/core/check.h"
#include "sdegen/param/prediction.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

class Conversions : public ::testing::TestWithParam<std::string> {
 protected:
  SchedulePtr s = make_schedule(GetParam());
  // A batch of images-shaped states checks that the code is shape-agnostic.
  torch::Tensor x = torch::randn({16, 2, 3, 3});
  torch::Tensor t = torch::rand({16}) * 0.9 + 0.05;
  ScheduleCoefficients c = s->coefficients(t).like(x);
};

TEST_P(Conversions, EveryPairRoundTrips) {
  const torch::Tensor y = torch::randn_like(x);  // an arbitrary data prediction
  const auto all = {Prediction::Data, Prediction::Noise, Prediction::Score, Prediction::Velocity,
                    Prediction::V};
  for (Prediction from : all) {
    const torch::Tensor value = convert(y, Prediction::Data, from, x, c);
    for (Prediction to : all) {
      const torch::Tensor there = convert(value, from, to, x, c);
      const torch::Tensor back = convert(there, to, from, x, c);
      const double scale = 1.0 + value.abs().max().item<double>();
      EXPECT_LT(max_abs_diff(back, value) / scale, 1e-6)
          << prediction_name(from) << " -> " << prediction_name(to) << " -> back";
    }
  }
}

TEST_P(Conversions, DefiningRelationsHold) {
  const torch::Tensor y = torch::randn_like(x);
  const torch::Tensor eps = convert(y, Prediction::Data, Prediction::Noise, x, c);
  EXPECT_LT(max_abs_diff(c.a * y + c.b * eps, x), 1e-9);
  EXPECT_LT(max_abs_diff(convert(y, Prediction::Data, Prediction::Score, x, c), -eps / c.b), 1e-9);
  EXPECT_LT(max_abs_diff(convert(y, Prediction::Data, Prediction::Velocity, x, c), c.da * y + c.db * eps), 1e-9);
  EXPECT_LT(max_abs_diff(convert(y, Prediction::Data, Prediction::V, x, c), c.a * eps - c.b * y), 1e-9);
}

// The scalar conversion of the raw sampling path is the tensor conversion, element by element.
TEST_P(Conversions, ScalarVelocityMatchesTheTensorConversion) {
  const torch::Tensor tt = torch::full({1}, 0.37, torch::kDouble);
  const ScheduleCoefficients one = s->coefficients(tt);
  const double a = one.a.item<double>(), b = one.b.item<double>(), da = one.da.item<double>(),
               db = one.db.item<double>();
  const torch::Tensor xs = torch::randn({7}, torch::kDouble), values = torch::randn({7}, torch::kDouble);
  for (Prediction from : {Prediction::Data, Prediction::Noise, Prediction::Score, Prediction::Velocity, Prediction::V}) {
    const torch::Tensor want = convert(values, from, Prediction::Velocity, xs, one);
    for (int64_t i = 0; i < 7; ++i) {
      const double got = velocity_of(from, values[i].item<double>(), xs[i].item<double>(), a, b, da, db);
      EXPECT_NEAR(got, want[i].item<double>(), 1e-12 * (1.0 + std::fabs(got))) << prediction_name(from);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Named, Conversions, ::testing::ValuesIn(schedule_names()),
                         [](const auto& info) { return test::param_name(info.param); });

// At vp's t = 1 (b = 0, b' = -inf) a finite velocity converts to its limit y_hat = x / a,
// eps_hat = 0, the values the general formula approaches just inside; the v-prediction
// (which flow time steps) is then finite too.
TEST(ConversionEnds, VelocityAtVpsDataEndIsItsLimit) {
  const SchedulePtr vp = make_schedule("vp");
  const torch::Tensor x = torch::randn({5, 2}, torch::kDouble), v = torch::randn({5, 2}, torch::kDouble);
  const DataNoise end = to_data_noise(v, Prediction::Velocity, x, vp->coefficients(torch::ones({5}, torch::kDouble)).like(x));
  const DataNoise inside =
      to_data_noise(v, Prediction::Velocity, x, vp->coefficients(torch::full({5}, 1.0 - 1e-14, torch::kDouble)).like(x));
  EXPECT_LT(max_abs_diff(end.data, x), 1e-15);
  EXPECT_EQ(end.noise.abs().max().item<double>(), 0.0);
  EXPECT_LT(max_abs_diff(end.data, inside.data), 1e-5);
  EXPECT_LT(max_abs_diff(end.noise, inside.noise), 1e-5);
}

TEST(PredictionNames, RoundTripAndUnknown) {
  for (const auto& n : prediction_names()) EXPECT_EQ(prediction_name(prediction_from_name(n)), n);
  EXPECT_THROW_WITH(prediction_from_name("x0"), InvalidArgument, "valid: data, noise, score, velocity, v");
}

}  // namespace
}  // namespace sdegen
