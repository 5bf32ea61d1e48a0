// The velocity's coefficients on the prediction and on x (what the exact divergence of a
// prediction network's flow uses) give back the scalar conversion itself, for every prediction,
// every named schedule and times across (0, 1): if one changes, this fails.
#include <cmath>

#include "sdegen/param/prediction.h"
#include "support/support.h"

namespace sdegen {
namespace {

class VelocityTermsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VelocityTermsTest, ReproduceTheScalarConversion) {
  const SchedulePtr s = make_schedule(GetParam());
  torch::manual_seed(4);
  const torch::Tensor xs = torch::randn({5}, torch::kDouble) * 3, values = torch::randn({5}, torch::kDouble) * 3;
  for (const double t : {0.05, 0.3, 0.62, 0.95}) {
    const ScheduleCoefficients c = s->coefficients(torch::full({1}, t, torch::kDouble));
    const double a = c.a.item<double>(), b = c.b.item<double>(), da = c.da.item<double>(), db = c.db.item<double>();
    for (Prediction from : {Prediction::Data, Prediction::Noise, Prediction::Score, Prediction::Velocity, Prediction::V}) {
      const VelocityTerms k = velocity_terms(from, a, b, da, db);
      for (int64_t i = 0; i < 5; ++i) {
        const double value = values[i].item<double>(), x = xs[i].item<double>();
        const double want = velocity_of(from, value, x, a, b, da, db);
        EXPECT_NEAR(k.value * value + k.x * x, want, 1e-12 * (1.0 + std::fabs(k.value * value) + std::fabs(k.x * x)))
            << prediction_name(from) << " at t = " << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Named, VelocityTermsTest, ::testing::ValuesIn(schedule_names()),
                         [](const auto& info) { return test::param_name(info.param); });

}  // namespace
}  // namespace sdegen
