// Every named schedule's a(t), b(t) and lambda(t) at interior times against the formulas of
// shared/docs/math.md's table, written out here independently of src/process, and the reverse
// diffusion sigma^2 = b^2 lambda'(t) against its formula. The ends are pinned elsewhere
// (schedule_test.cpp); an error that leaves both ends alone (vp with B0 and B1 exchanged, the
// linear schedule's b_min dropped) shows only in between.
#include <cmath>
#include <functional>
#include <set>

#include "sdegen/process/generative.h"
#include "sdegen/process/schedule.h"
#include "support/support.h"

namespace sdegen {
namespace {

constexpr double kPi = 3.14159265358979323846;

// a(t) and b(t) of one schedule, straight from the table (s = 1 - t for the noising ones).
struct TableSchedule {
  std::string name;
  ScheduleOptions options;
  std::function<double(double)> a, b;
  std::string label;
};
void PrintTo(const TableSchedule& s, std::ostream* os) { *os << s.label; }

double vp_a(double t, double b0, double b1) {
  const double s = 1.0 - t;
  return std::exp(-0.25 * s * s * (b1 - b0) - 0.5 * s * b0);
}

// improved-DDPM: alpha_bar(s) = f(s) / f(0) with f(s) = cos^2((s + o) / (1 + o) pi / 2), a = sqrt(alpha_bar).
double cosine_a(double t, double o) {
  const double s = 1.0 - t;
  const double f = std::pow(std::cos((s + o) / (1.0 + o) * kPi / 2), 2);
  const double f0 = std::pow(std::cos(o / (1.0 + o) * kPi / 2), 2);
  return std::sqrt(f / f0);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<TableSchedule> table() {
  std::vector<TableSchedule> out;
  out.push_back({"linear", {}, [](double t) { return t; }, [](double t) { return 1.0 - t; }, "linear"});
  ScheduleOptions bmin;
  bmin.b_min = 0.1;
  out.push_back({"linear", bmin, [](double t) { return t; }, [](double t) { return 1.0 - 0.9 * t; }, "linear_bmin"});
  out.push_back({"trig", {}, [](double t) { return std::sin(kPi * t / 2); },
                 [](double t) { return std::cos(kPi * t / 2); }, "trig"});
  out.push_back({"vp", {}, [](double t) { return vp_a(t, 0.1, 20.0); },
                 [](double t) { return std::sqrt(1.0 - std::pow(vp_a(t, 0.1, 20.0), 2)); }, "vp"});
  ScheduleOptions betas;
  betas.beta_min = 0.5;
  betas.beta_max = 8.0;
  out.push_back({"vp", betas, [](double t) { return vp_a(t, 0.5, 8.0); },
                 [](double t) { return std::sqrt(1.0 - std::pow(vp_a(t, 0.5, 8.0), 2)); }, "vp_betas"});
  out.push_back({"vp-cosine", {}, [](double t) { return cosine_a(t, 0.008); },
                 [](double t) { return std::sqrt(1.0 - std::pow(cosine_a(t, 0.008), 2)); }, "vp_cosine"});
  out.push_back({"sub-vp", {}, [](double t) { return vp_a(t, 0.1, 20.0); },
                 [](double t) { return 1.0 - std::pow(vp_a(t, 0.1, 20.0), 2); }, "sub_vp"});
  out.push_back({"sub-vp", betas, [](double t) { return vp_a(t, 0.5, 8.0); },
                 [](double t) { return 1.0 - std::pow(vp_a(t, 0.5, 8.0), 2); }, "sub_vp_betas"});
  out.push_back({"ve", {}, [](double) { return 1.0; },
                 [](double t) { return 0.01 * std::pow(50.0 / 0.01, 1.0 - t); }, "ve"});
  const double r = 1.0 / 7.0, hi = std::pow(80.0, r), lo = std::pow(0.002, r);
  out.push_back({"edm", {}, [](double) { return 1.0; },
                 [hi, lo](double t) { return std::pow(hi + t * (lo - hi), 7.0); }, "edm"});
  // lambda = l0 + t (l1 - l0) with the defaults l0 = -10, l1 = 12.
  const auto l = [](double t) { return -10.0 + 22.0 * t; };
  out.push_back({"loglinear", {}, [l](double t) { return std::sqrt(sigmoid(l(t))); },
                 [l](double t) { return std::sqrt(sigmoid(-l(t))); }, "loglinear"});
  return out;
}

class TableInterior : public ::testing::TestWithParam<TableSchedule> {
 protected:
  SchedulePtr s = make_schedule(GetParam().name, GetParam().options);
  const std::vector<double> times = {0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9};
  double lambda(double t) const {
    const double a = GetParam().a(t), b = GetParam().b(t);
    return std::log(a * a / (b * b));
  }
  // lambda' by a central difference of the table's lambda: independent of every closed form.
  double dlambda(double t) const {
    const double h = 1e-5;
    return (lambda(t + h) - lambda(t - h)) / (2 * h);
  }
};

TEST_P(TableInterior, CoefficientsAreTheTablesFormulas) {
  for (double t : times) {
    const double a = GetParam().a(t), b = GetParam().b(t);
    EXPECT_NEAR(s->a(t), a, 1e-12 * std::abs(a)) << "a at t = " << t;
    EXPECT_NEAR(s->b(t), b, 1e-12 * std::abs(b)) << "b at t = " << t;
    EXPECT_NEAR(s->lambda(t), lambda(t), 1e-10) << "lambda at t = " << t;
    const torch::Tensor tt = torch::tensor(t, torch::kDouble);
    // The tensor path and the raw path the fused kernels read.
    RawCoefficients raw;
    s->evaluate(&t, 1, raw);
    EXPECT_NEAR(raw.a[0], a, 1e-12 * std::abs(a)) << "raw a at t = " << t;
    EXPECT_NEAR(raw.b[0], b, 1e-12 * std::abs(b)) << "raw b at t = " << t;
    EXPECT_NEAR(s->dlambda(tt).item<double>(), dlambda(t), 1e-6 * (1.0 + std::abs(dlambda(t)))) << "t = " << t;
  }
}

// The standard reverse diffusion sigma^2 = b^2 lambda', at scale 1 and scaled.
TEST_P(TableInterior, ReverseDiffusionIsBSquaredTimesLambdaPrime) {
  const DiffusionSpec reverse = parse_diffusion("reverse"), half = parse_diffusion("reverse:0.5");
  for (double t : times) {
    const double b = GetParam().b(t), want = b * b * dlambda(t);
    const double sigma = diffusion_at(reverse, *s, t);
    EXPECT_NEAR(sigma * sigma, want, 1e-6 * want) << "t = " << t;
    EXPECT_NEAR(diffusion_at(half, *s, t), 0.5 * sigma, 1e-15 * sigma) << "t = " << t;
  }
  EXPECT_EQ(diffusion_at(parse_diffusion("0.7"), *s, 0.3), 0.7);
  EXPECT_EQ(diffusion_at(parse_diffusion("0"), *s, 0.3), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Named, TableInterior, ::testing::ValuesIn(table()),
                         [](const auto& info) { return info.param.label; });

TEST(TableInterior, CoversEveryNamedSchedule) {
  std::set<std::string> covered;
  for (const auto& entry : table()) covered.insert(entry.name);
  for (const auto& name : schedule_names()) EXPECT_TRUE(covered.count(name)) << name;
}

TEST(TableInterior, PriorStdIsSigmaMaxForVeAndEdm) {
  EXPECT_EQ(make_schedule("ve")->prior_std(), 50.0);
  EXPECT_EQ(make_schedule("edm")->prior_std(), 80.0);
  for (const std::string name : {"linear", "trig", "vp", "vp-cosine", "sub-vp", "loglinear"})
    EXPECT_EQ(make_schedule(name)->prior_std(), 1.0) << name;
}

}  // namespace
}  // namespace sdegen
