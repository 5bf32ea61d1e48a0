// The loglinear schedule with a learned monotone shape: endpoints, monotonicity, closed-form
// derivatives and inverse against finite differences and round trips, gradients in its
// parameters, shared (not copied) parameters, and refusal of bad parameters.
#include "sdegen/core/check.h"
#include "sdegen/process/loglinear.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::central_difference;
using test::max_abs_diff;

constexpr int64_t kPieces = 5;

// Endpoints -7 and 9 and uneven, random pieces.
LogLinearParameters uneven() {
  torch::manual_seed(4);
  LogLinearParameters p = loglinear_parameters(-7.0, 9.0, kPieces);
  p.shape_logits = 1.5 * torch::randn({kPieces});
  return p;
}

// Times inside the pieces (finite differences must not straddle a knot, where m' jumps).
torch::Tensor interior_times() {
  std::vector<double> t;
  for (int64_t k = 0; k < kPieces; ++k)
    for (double f : {0.1, 0.35, 0.6, 0.9}) t.push_back((k + f) / kPieces);
  return torch::tensor(t, torch::kDouble);
}

TEST(LearnedLogLinear, MonotoneWithTheGivenEndpoints) {
  const LogLinearSchedule s(uneven());
  EXPECT_NEAR(s.lambda(0.0), -7.0, 1e-12);
  EXPECT_NEAR(s.lambda(1.0), 9.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.lambda_0(), -7.0);
  EXPECT_DOUBLE_EQ(s.lambda_1(), 9.0);
  const torch::Tensor t = torch::linspace(0.0, 1.0, 401, torch::kDouble);
  const torch::Tensor l = s.lambda(t);
  EXPECT_TRUE((l.slice(0, 1) > l.slice(0, 0, -1)).all().item<bool>());
  EXPECT_TRUE((s.dlambda(t) > 0).all().item<bool>());
  // Variance preserving, and lambda is the log-SNR.
  const torch::Tensor a = s.a(t), b = s.b(t);
  EXPECT_LT(max_abs_diff(a * a + b * b, torch::ones_like(t)), 1e-12);
  EXPECT_LT(max_abs_diff(torch::log(a * a / (b * b)), l), 1e-9);
  // The pieces are genuinely uneven: m is not t.
  EXPECT_GT(max_abs_diff(s.shape(t), t), 0.05);
}

TEST(LearnedLogLinear, DerivativesMatchFiniteDifferences) {
  const LogLinearSchedule s(uneven());
  const torch::Tensor t = interior_times();
  EXPECT_LT(max_abs_diff(s.dlambda(t), central_difference([&](auto& u) { return s.lambda(u); }, t)), 1e-6);
  EXPECT_LT(max_abs_diff(s.da(t), central_difference([&](auto& u) { return s.a(u); }, t)), 1e-7);
  EXPECT_LT(max_abs_diff(s.db(t), central_difference([&](auto& u) { return s.b(u); }, t)), 1e-7);
}

// The closed form on doubles reads the current parameters and agrees with the tensor path.
TEST(LearnedLogLinear, RawEvaluationMatchesTheTensorFunctions) {
  const LogLinearSchedule s(uneven());
  const torch::Tensor t = torch::linspace(0.0, 1.0, 203, torch::kDouble);
  RawCoefficients raw;
  s.evaluate(t.data_ptr<double>(), t.numel(), raw);
  auto vec = [](const std::vector<double>& v) { return torch::tensor(v, torch::kDouble); };
  EXPECT_LT(max_abs_diff(vec(raw.a), s.a(t)), 1e-13);
  EXPECT_LT(max_abs_diff(vec(raw.b), s.b(t)), 1e-13);
  EXPECT_LT(max_abs_diff(vec(raw.da), s.da(t)), 1e-12);
  EXPECT_LT(max_abs_diff(vec(raw.db), s.db(t)), 1e-12);
  EXPECT_LT(max_abs_diff(vec(raw.dlambda), s.dlambda(t)), 1e-12);
}

TEST(LearnedLogLinear, InverseRoundTrips) {
  const LogLinearSchedule s(uneven());
  const torch::Tensor t = torch::linspace(0.0, 1.0, 97, torch::kDouble);
  EXPECT_LT(max_abs_diff(s.inverse_lambda(s.lambda(t)), t), 1e-12);
  const torch::Tensor l = torch::linspace(-7.0, 9.0, 61, torch::kDouble);
  EXPECT_LT(max_abs_diff(s.lambda(s.inverse_lambda(l)), l), 1e-10);
  EXPECT_NEAR(s.inverse_lambda(s.lambda(0.37)), 0.37, 1e-12);  // the scalar path
  // A lambda grid of this schedule is uniform in lambda.
  GridOptions o;
  o.kind = GridKind::Lambda;
  const TimeGrid g = make_time_grid(12, o, s);
  for (size_t i = 1; i < g.size(); ++i) EXPECT_NEAR(s.lambda(g[i]) - s.lambda(g[i - 1]), 16.0 / 12, 1e-9);
}

TEST(LearnedLogLinear, ZeroLogitsAndOnePieceAreTheNamedSchedule) {
  const SchedulePtr named = make_schedule("loglinear", ScheduleOptions{});
  const LogLinearSchedule flat(loglinear_parameters(-10.0, 12.0, 4));
  const torch::Tensor t = torch::linspace(0.0, 1.0, 33, torch::kDouble);
  EXPECT_LT(max_abs_diff(flat.lambda(t), -10.0 + 22.0 * t), 1e-12);
  EXPECT_LT(max_abs_diff(named->lambda(t), -10.0 + 22.0 * t), 1e-12);
  EXPECT_LT(max_abs_diff(flat.a(t), torch::sqrt(torch::sigmoid(-10.0 + 22.0 * t))), 1e-14);
  EXPECT_LT(max_abs_diff(flat.db(t), named->db(t)), 1e-12);
  EXPECT_LT(max_abs_diff(flat.dlambda(t), torch::full_like(t, 22.0)), 1e-12);
  EXPECT_EQ(named->name(), "loglinear");
}

// d lambda(t) / d l0 = 1 - m(t), d / d l1 = m(t), and d / d w matches finite differences.
TEST(LearnedLogLinear, GradientsReachTheParameters) {
  LogLinearParameters p = uneven();
  p.lambda_0.requires_grad_(true);
  p.lambda_1.requires_grad_(true);
  p.shape_logits.requires_grad_(true);
  const LogLinearSchedule s(p);
  const torch::Tensor t = interior_times();
  const torch::Tensor weights = torch::linspace(0.5, 1.5, t.size(0), torch::kDouble);
  // A scalar that uses a, b, a', b' and lambda' at once.
  const auto objective = [&] {
    const ScheduleCoefficients c = s.coefficients(t);
    return (weights * (c.a + 2.0 * c.b + 0.1 * c.da - 0.3 * c.db + 0.01 * s.dlambda(t))).sum();
  };
  const auto grads = torch::autograd::grad({objective()}, {p.lambda_0, p.lambda_1, p.shape_logits});
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  const auto fd = [&](const torch::Tensor& param, int64_t i) {
    torch::Tensor entry = param.dim() == 0 ? param : param[i];
    entry.add_(h);
    const double up = objective().item<double>();
    entry.sub_(2 * h);
    const double down = objective().item<double>();
    entry.add_(h);
    return (up - down) / (2 * h);
  };
  EXPECT_NEAR(grads[0].item<double>(), fd(p.lambda_0, 0), 1e-6);
  EXPECT_NEAR(grads[1].item<double>(), fd(p.lambda_1, 0), 1e-6);
  for (int64_t i = 0; i < kPieces; ++i) EXPECT_NEAR(grads[2][i].item<double>(), fd(p.shape_logits, i), 1e-6) << i;
  EXPECT_GT(grads[2].abs().max().item<double>(), 1e-3);

  torch::AutoGradMode grad_on(true);
  const torch::Tensor tt = torch::tensor(0.3, torch::kDouble);
  const auto dl = torch::autograd::grad({s.lambda(tt)}, {p.lambda_0, p.lambda_1});
  const double m = s.shape(tt).item<double>();
  EXPECT_NEAR(dl[0].item<double>(), 1.0 - m, 1e-12);
  EXPECT_NEAR(dl[1].item<double>(), m, 1e-12);
}

TEST(LearnedLogLinear, SeesChangesToItsSharedParameters) {
  LogLinearParameters p = uneven();
  const LogLinearSchedule s(p);
  p.lambda_1.fill_(11.0);
  p.shape_logits.zero_();
  EXPECT_NEAR(s.lambda(1.0), 11.0, 1e-12);
  EXPECT_NEAR(s.lambda(0.25), -7.0 + 18.0 * 0.25, 1e-12);
  EXPECT_NEAR(s.inverse_lambda(2.0), 0.5, 1e-12);
}

TEST(LearnedLogLinear, RefusesBadParameters) {
  EXPECT_THROW_WITH(LogLinearSchedule(loglinear_parameters(3.0, 3.0)), InvalidArgument,
                    "lambda(0) < lambda(1), got lambda(0) = 3 and lambda(1) = 3");
  EXPECT_THROW_WITH(LogLinearSchedule(loglinear_parameters(5.0, -5.0)), InvalidArgument, "lambda(0) < lambda(1)");
  EXPECT_THROW_WITH(loglinear_parameters(-1.0, 1.0, 0), InvalidArgument, "at least 1 piece, got 0");
  LogLinearParameters p = loglinear_parameters(-1.0, 1.0);
  p.shape_logits = torch::zeros({0}, torch::kDouble);
  EXPECT_THROW_WITH(LogLinearSchedule{p}, InvalidArgument, "at least 1 piece");
  p.shape_logits = torch::zeros({2, 2}, torch::kDouble);
  EXPECT_THROW_WITH(LogLinearSchedule{p}, InvalidArgument, "1-D");
  ScheduleOptions o;
  o.lambda_min = 4.0;
  o.lambda_max = 4.0;
  EXPECT_THROW_WITH(make_schedule("loglinear", o), InvalidArgument, "lambda_min < lambda_max");
}

}  // namespace
}  // namespace sdegen
