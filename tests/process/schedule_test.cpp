// Every named schedule: closed-form derivatives against finite differences, lambda's inverse
// round trip, lambda increasing, and the SDE the schedule implies reproducing its moments.
#include "sdegen/core/check.h"
#include "sdegen/process/generative.h"
#include "sdegen/process/schedule.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::central_difference;
using test::max_abs_diff;

class EverySchedule : public ::testing::TestWithParam<std::string> {
 protected:
  SchedulePtr s = make_schedule(GetParam());
  // Interior times, away from end points where b or a vanish and derivatives blow up.
  torch::Tensor t = torch::linspace(0.05, 0.95, 19, torch::kDouble);
};

TEST_P(EverySchedule, DerivativesMatchFiniteDifferences) {
  auto rel = [](const torch::Tensor& exact, const torch::Tensor& fd) {
    return ((exact - fd).abs() / (1.0 + exact.abs())).max().item<double>();
  };
  EXPECT_LT(rel(s->da(t), central_difference([&](auto& u) { return s->a(u); }, t)), 1e-6);
  EXPECT_LT(rel(s->db(t), central_difference([&](auto& u) { return s->b(u); }, t)), 1e-6);
  EXPECT_LT(rel(s->dlambda(t), central_difference([&](auto& u) { return s->lambda(u); }, t)), 1e-6);
}

TEST_P(EverySchedule, LambdaIsLogSnrAndIncreasing) {
  const torch::Tensor a = s->a(t), b = s->b(t);
  EXPECT_LT(max_abs_diff(s->lambda(t), torch::log(a * a / (b * b))), 1e-9);
  const torch::Tensor l = s->lambda(t);
  EXPECT_TRUE((l.slice(0, 1) > l.slice(0, 0, -1)).all().item<bool>());
}

TEST_P(EverySchedule, InverseLambdaRoundTrips) {
  EXPECT_LT(max_abs_diff(s->inverse_lambda(s->lambda(t)), t), 1e-9);
  const torch::Tensor lam = torch::linspace(s->lambda(0.05), s->lambda(0.95), 13, torch::kDouble);
  EXPECT_LT(max_abs_diff(s->lambda(s->inverse_lambda(lam)), lam), 1e-8);
}

// x_t = a y + b eps has mean a y and variance b^2. The linear SDE with drift
// a'/a x + (b b' - a'/a b^2) s... is simpler to check through its moment ODEs: the conditional
// drift g = a' y + b' (x - a y) / b (sigma = 0) moves mean m and std v as m' = a' y + b'(m - a y)/b,
// v' = b' v / b. Integrating these from t = 0.05 reproduces a(t) y and b(t).
TEST_P(EverySchedule, ImpliedFlowReproducesMoments) {
  const double y = 1.7;
  const int n = 4000;
  const double t0 = 0.05, t1 = 0.95, dt = (t1 - t0) / n;
  double m = s->a(t0) * y, v = s->b(t0);
  auto rhs = [&](double tt, double mm, double vv, double& dm, double& dv) {
    const auto T = torch::tensor(tt, torch::kDouble);
    const double a = s->a(T).item<double>(), b = s->b(T).item<double>();
    const double da = s->da(T).item<double>(), db = s->db(T).item<double>();
    dm = da * y + db * (mm - a * y) / b;
    dv = db * vv / b;
  };
  for (int i = 0; i < n; ++i) {  // Heun
    const double tt = t0 + i * dt;
    double dm1, dv1, dm2, dv2;
    rhs(tt, m, v, dm1, dv1);
    rhs(tt + dt, m + dt * dm1, v + dt * dv1, dm2, dv2);
    m += 0.5 * dt * (dm1 + dm2);
    v += 0.5 * dt * (dv1 + dv2);
  }
  EXPECT_NEAR(m, s->a(t1) * y, 1e-4 * (1 + std::abs(m)));
  EXPECT_NEAR(v, s->b(t1), 1e-4 * (1 + v));
}

// The raw arrays the fused training kernels use are the tensor functions' values, over the
// whole training range (the ends included where they are finite).
TEST_P(EverySchedule, RawEvaluationMatchesTheTensorFunctions) {
  const torch::Tensor times = torch::linspace(1e-3, 1.0 - 1e-3, 301, torch::kDouble);
  RawCoefficients raw;
  s->evaluate(times.data_ptr<double>(), times.numel(), raw);
  auto vec = [](const std::vector<double>& v) { return torch::tensor(v, torch::kDouble); };
  auto rel = [](const torch::Tensor& got, const torch::Tensor& want) {
    return ((got - want).abs() / (want.abs() + 1e-300)).max().item<double>();
  };
  // 1e-12: near the data end b = sqrt((1 - a)(1 + a)) (vp-cosine) magnifies a last-bit
  // difference between two cosines.
  EXPECT_LT(rel(vec(raw.a), s->a(times)), 1e-12);
  EXPECT_LT(rel(vec(raw.b), s->b(times)), 1e-12);
  EXPECT_LT(rel(vec(raw.da), s->da(times)), 1e-12);
  EXPECT_LT(rel(vec(raw.db), s->db(times)), 1e-12);
  EXPECT_LT(rel(vec(raw.dlambda), s->dlambda(times)), 1e-12);
}

// b b' is half the derivative of b^2 inside, and finite at both ends: at the data end of vp and
// vp-cosine, where b' is infinite, it is the limit of its values just inside.
TEST_P(EverySchedule, BDbIsHalfTheDerivativeOfBSquared) {
  const torch::Tensor fd = central_difference([&](auto& u) { return 0.5 * s->b(u) * s->b(u); }, t);
  EXPECT_LT(((s->b_db(t) - fd).abs() / (1.0 + fd.abs())).max().item<double>(), 1e-6);
  for (double end : {0.0, 1.0}) {
    const double inside = end == 0.0 ? 1e-9 : 1.0 - 1e-9;
    ASSERT_TRUE(std::isfinite(s->b_db(end))) << "t = " << end;
    EXPECT_NEAR(s->b_db(end), s->b_db(inside), 1e-6 * (1.0 + std::abs(s->b_db(end)))) << "t = " << end;
  }
}

INSTANTIATE_TEST_SUITE_P(Named, EverySchedule, ::testing::ValuesIn(schedule_names()),
                         [](const auto& info) { return test::param_name(info.param); });

// A schedule that only defines the tensor functions gets the raw evaluation from them.
class Quadratic final : public AffineSchedule {
 public:
  std::string name() const override { return "quadratic"; }
  torch::Tensor a(const torch::Tensor& t) const override { return t * t; }
  torch::Tensor b(const torch::Tensor& t) const override { return 1.0 - t * t; }
  torch::Tensor da(const torch::Tensor& t) const override { return 2.0 * t; }
  torch::Tensor db(const torch::Tensor& t) const override { return -2.0 * t; }
  torch::Tensor inverse_lambda(const torch::Tensor& l) const override {
    const torch::Tensor r = torch::exp(0.5 * l);
    return torch::sqrt(r / (1.0 + r));
  }
};

TEST(ScheduleRaw, DefaultEvaluationGoesThroughTheTensorFunctions) {
  const Quadratic q;
  const std::vector<double> t = {0.25, 0.5};
  RawCoefficients raw;
  q.evaluate(t.data(), 2, raw);
  EXPECT_DOUBLE_EQ(raw.a[1], 0.25);
  EXPECT_DOUBLE_EQ(raw.b[0], 1.0 - 0.0625);
  EXPECT_DOUBLE_EQ(raw.da[0], 0.5);
  EXPECT_DOUBLE_EQ(raw.db[1], -1.0);
  EXPECT_NEAR(raw.dlambda[1], 2.0 * (1.0 / 0.25 + 1.0 / 0.75), 1e-12);  // 2 (a'/a - b'/b)
}

// Where a schedule reaches a = 0 or b = 0 it does so exactly, so lambda is infinite there and
// lambda grids clip it; trig's cos(pi / 2) = 6e-17 once left lambda(1) = 74, whose grid points
// all rounded to t = 1.
TEST(ScheduleEnds, AreExact) {
  for (const std::string name : {"linear", "trig", "vp-cosine"}) {
    const SchedulePtr s = make_schedule(name);
    EXPECT_EQ(s->a(0.0), 0.0) << name;
    EXPECT_EQ(s->lambda(0.0), -std::numeric_limits<double>::infinity()) << name;
  }
  for (const std::string name : {"linear", "trig", "vp", "vp-cosine", "sub-vp"}) {
    const SchedulePtr s = make_schedule(name);
    EXPECT_EQ(s->b(1.0), 0.0) << name;
    EXPECT_EQ(s->a(1.0), 1.0) << name;
    EXPECT_EQ(s->lambda(1.0), std::numeric_limits<double>::infinity()) << name;
  }
  for (const std::string name : {"ve", "edm", "loglinear"}) {
    const SchedulePtr s = make_schedule(name);
    EXPECT_TRUE(std::isfinite(s->lambda(0.0)) && std::isfinite(s->lambda(1.0))) << name;
  }
}

// The lambda grid of every schedule is strictly increasing from t = 0 to t = 1.
TEST(ScheduleEnds, LambdaGridsIncrease) {
  for (const auto& name : schedule_names())
    for (int steps : {10, 50, 200}) {
      GridOptions g;
      g.kind = GridKind::Lambda;
      const TimeGrid grid = make_time_grid(steps, g, *make_schedule(name));
      EXPECT_EQ(grid.front(), 0.0);
      EXPECT_EQ(grid.back(), 1.0);
      EXPECT_TRUE(std::is_sorted(grid.begin(), grid.end(), std::less_equal<double>())) << name << " " << steps;
    }
}

// The reverse diffusion sigma^2 = b^2 lambda' takes its limit -2 b b' where b = 0 (vp's data end)
// and is infinite where a = 0 (linear's prior end).
TEST(ScheduleEnds, ReverseDiffusionAtTheEnds) {
  const DiffusionSpec reverse = parse_diffusion("reverse");
  const SchedulePtr vp = make_schedule("vp");
  const double at_end = diffusion_at(reverse, *vp, 1.0);
  ASSERT_TRUE(std::isfinite(at_end));
  EXPECT_NEAR(at_end, diffusion_at(reverse, *vp, 1.0 - 1e-9), 1e-6);
  EXPECT_NEAR(at_end * at_end, 0.1, 1e-12);  // 2 a^2 (log a)' = beta_min at t = 1
  EXPECT_TRUE(std::isinf(diffusion_at(reverse, *make_schedule("linear"), 0.0)));
}

TEST(ScheduleFactory, UnknownNameListsValidOnes) {
  EXPECT_THROW_WITH(make_schedule("cosine"), InvalidArgument, "valid: linear, trig, vp");
}

TEST(ScheduleFactory, RejectsBadParameters) {
  ScheduleOptions o;
  o.b_min = 1.5;
  EXPECT_THROW_WITH(make_schedule("linear", o), InvalidArgument, "b_min");
  ScheduleOptions v;
  v.sigma_min = 10.0;
  v.sigma_max = 1.0;
  EXPECT_THROW_WITH(make_schedule("ve", v), InvalidArgument, "sigma_min");
}

TEST(ScheduleEndPoints, PriorAndDataEnds) {
  // Flow and variance-preserving schedules start at pure noise and end at the data.
  for (const std::string name : {"linear", "trig", "vp-cosine"}) {
    auto s = make_schedule(name);
    EXPECT_NEAR(s->a(0.0), 0.0, 1e-12) << name;
    EXPECT_NEAR(s->b(0.0), 1.0, 1e-12) << name;
    EXPECT_NEAR(s->a(1.0), 1.0, 1e-12) << name;
    EXPECT_NEAR(s->b(1.0), 0.0, 1e-7) << name;
  }
  auto ve = make_schedule("ve");
  EXPECT_DOUBLE_EQ(ve->prior_std(), 50.0);
  EXPECT_NEAR(ve->b(0.0), 50.0, 1e-9);
  EXPECT_NEAR(ve->b(1.0), 0.01, 1e-12);
  auto edm = make_schedule("edm");
  EXPECT_NEAR(edm->b(0.0), 80.0, 1e-9);
  EXPECT_NEAR(edm->b(1.0), 0.002, 1e-12);
  auto vp = make_schedule("vp");
  EXPECT_NEAR(vp->a(1.0), 1.0, 1e-12);
  EXPECT_LT(vp->a(0.0), 0.01);
}

TEST(ScheduleGrid, LambdaGridIsUniformInLambda) {
  auto s = make_schedule("vp");
  GridOptions o;
  o.kind = GridKind::Lambda;
  o.t0 = 0.01;
  o.t1 = 0.99;
  const TimeGrid g = make_time_grid(10, o, *s);
  ASSERT_EQ(g.size(), 11u);
  EXPECT_DOUBLE_EQ(g.front(), 0.01);
  EXPECT_DOUBLE_EQ(g.back(), 0.99);
  const double h = s->lambda(g[1]) - s->lambda(g[0]);
  for (size_t i = 1; i < g.size(); ++i) EXPECT_NEAR(s->lambda(g[i]) - s->lambda(g[i - 1]), h, 1e-8);
}

TEST(ScheduleGrid, EdmGridFollowsRhoSpacing) {
  auto s = make_schedule("edm");
  GridOptions o;
  o.kind = GridKind::Edm;
  const TimeGrid g = make_time_grid(8, o, *s);
  // For the edm schedule itself, the rho spacing in sigma is uniform spacing in t.
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], i / 8.0, 1e-9);
}

TEST(ScheduleGrid, InfiniteLambdaEndsAreClipped) {
  auto s = make_schedule("linear");  // lambda(0) = -inf, lambda(1) = +inf
  GridOptions o;
  o.kind = GridKind::Lambda;
  const TimeGrid g = make_time_grid(20, o, *s);
  EXPECT_DOUBLE_EQ(g.front(), 0.0);
  EXPECT_DOUBLE_EQ(g.back(), 1.0);
  for (size_t i = 1; i < g.size(); ++i) EXPECT_GT(g[i], g[i - 1]);
}

TEST(ScheduleGrid, RejectsNonPositiveSteps) {
  EXPECT_THROW_WITH(make_time_grid(0, GridOptions{}), InvalidArgument, "positive");
}

}  // namespace
}  // namespace sdegen
