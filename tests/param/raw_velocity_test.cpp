// velocity_of, the raw sampling path's conversion of one element to the probability-flow
// velocity, against the tensor conversions for every prediction, on every named schedule.
#include "sdegen/param/prediction.h"
#include "support/support.h"

namespace sdegen {
namespace {

class RawVelocity : public ::testing::TestWithParam<std::string> {};

TEST_P(RawVelocity, MatchesTheTensorConversionForEveryPrediction) {
  const SchedulePtr s = make_schedule(GetParam());
  torch::manual_seed(2);
  const torch::Tensor x = torch::randn({12, 1}, torch::kDouble) * s->prior_std();
  const torch::Tensor t = torch::linspace(0.1, 0.9, 12, torch::kDouble);
  const ScheduleCoefficients c = s->coefficients(t).like(x);
  const torch::Tensor y = torch::randn({12, 1}, torch::kDouble);  // an arbitrary data prediction
  for (const Prediction p : {Prediction::Data, Prediction::Noise, Prediction::Score, Prediction::Velocity, Prediction::V}) {
    const torch::Tensor value = convert(y, Prediction::Data, p, x, c);
    const torch::Tensor want = convert(value, p, Prediction::Velocity, x, c);
    for (int64_t i = 0; i < 12; ++i) {
      const double got = velocity_of(p, value[i][0].item<double>(), x[i][0].item<double>(), c.a[i][0].item<double>(),
                                     c.b[i][0].item<double>(), c.da[i][0].item<double>(), c.db[i][0].item<double>());
      const double w = want[i][0].item<double>();
      EXPECT_NEAR(got, w, 1e-10 * (1.0 + std::abs(w))) << prediction_name(p) << " at t = " << t[i].item<double>();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Named, RawVelocity, ::testing::ValuesIn(schedule_names()),
                         [](const auto& info) { return test::param_name(info.param); });

}  // namespace
}  // namespace sdegen
