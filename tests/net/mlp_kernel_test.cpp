// The raw-buffer Mlp against the Mlp module: the same output, time derivative and Jacobian as
// forward_with_tangents, and, for a loss that is any linear function of those, the same
// parameter and input gradients as autograd through them, for every activation, time
// embedding, depth and choice of tangent directions.
#include "sdegen/core/error.h"
#include "sdegen/core/tensor.h"
#include "sdegen/net/mlp_kernel.h"
#include "support/support.h"

namespace sdegen {
namespace {

struct NetCase {
  std::string activation, embedding;
  int64_t depth;
};

void PrintTo(const NetCase& c, std::ostream* os) { *os << c.activation << "/" << c.embedding << "/" << c.depth; }

std::string case_name(const ::testing::TestParamInfo<NetCase>& info) {
  return info.param.activation + "_" + info.param.embedding + "_depth" + std::to_string(info.param.depth);
}

class EveryNet : public ::testing::TestWithParam<NetCase> {
 protected:
  Mlp make(int64_t d, int64_t out) {
    torch::manual_seed(11);
    Mlp net(MlpOptions(d)
                .out_dim(out)
                .width(9)
                .depth(GetParam().depth)
                .activation(GetParam().activation)
                .time_embedding(GetParam().embedding)
                .embedding_dim(4)
                .fourier_scale(1.0)
                .max_frequency(10.0));
    net->to(torch::kDouble);
    return net;
  }
};

// The stack the kernel writes, built from forward_with_tangents: [blocks, batch, out].
torch::Tensor reference_stack(const MlpImpl::Tangents& r, Directions dirs) {
  std::vector<torch::Tensor> blocks = {r.out};
  if (dirs.time) blocks.push_back(r.d_dt);
  if (dirs.jacobian)
    for (int64_t j = 0; j < r.jacobian.size(2); ++j) blocks.push_back(r.jacobian.select(2, j));
  return torch::stack(blocks);
}

const std::vector<Directions> kDirections = {{false, false}, {true, false}, {false, true}, {true, true}};

TEST_P(EveryNet, ForwardMatchesTheModule) {
  const int64_t d = 3, out = 2, n = 6;
  Mlp net = make(d, out);
  const torch::Tensor x = torch::randn({n, d}, torch::kDouble);
  const torch::Tensor t = torch::rand({n}, torch::kDouble);
  for (Directions dirs : kDirections) {
    const MlpKernel kernel(*net);
    MlpTape tape;
    kernel.forward(x.data_ptr<double>(), t.data_ptr<double>(), n, dirs, tape);
    ASSERT_EQ(tape.blocks(), kernel.blocks(dirs));
    const torch::Tensor got =
        torch::from_blob(const_cast<double*>(tape.output()), {tape.blocks(), n, out}, torch::kDouble).clone();
    torch::NoGradGuard no_grad;
    const torch::Tensor want = reference_stack(net->forward_with_tangents(x, t, dirs.time, dirs.jacobian), dirs);
    EXPECT_LT(test::max_abs_diff(got, want), 1e-12) << "time " << dirs.time << ", jacobian " << dirs.jacobian;
  }
}

TEST_P(EveryNet, BackwardMatchesAutograd) {
  const int64_t d = 2, out = 3, n = 5;
  Mlp net = make(d, out);
  const torch::Tensor x = torch::randn({n, d}, torch::kDouble);
  const torch::Tensor t = torch::rand({n}, torch::kDouble);
  const std::vector<torch::Tensor> params = net->parameters();
  for (Directions dirs : kDirections) {
    const MlpKernel kernel(*net);
    MlpTape tape;
    kernel.forward(x.data_ptr<double>(), t.data_ptr<double>(), n, dirs, tape);
    const torch::Tensor weights = torch::randn({tape.blocks(), n, out}, torch::kDouble);

    // Autograd: L = sum(weights * stack), through forward_with_tangents.
    zero_gradients(params);
    const torch::Tensor xa = x.clone().requires_grad_(true);
    (weights * reference_stack(net->forward_with_tangents(xa, t, dirs.time, dirs.jacobian), dirs)).sum().backward();
    std::vector<torch::Tensor> want;
    for (const auto& p : params) want.push_back(p.grad().clone());
    const torch::Tensor want_x = xa.grad().clone();

    zero_gradients(params);
    torch::Tensor g = weights.clone();
    torch::Tensor gx = torch::full({n, d}, 7.0, torch::kDouble);  // overwritten, not added to
    kernel.backward(tape, g.data_ptr<double>(), gx.data_ptr<double>());
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_LT(test::max_abs_diff(params[i].grad(), want[i]), 1e-11)
          << "parameter " << i << ", time " << dirs.time << ", jacobian " << dirs.jacobian;
    EXPECT_LT(test::max_abs_diff(gx, want_x), 1e-11) << "input, time " << dirs.time << ", jacobian " << dirs.jacobian;
  }
}

TEST_P(EveryNet, BackwardAddsToExistingGradients) {
  Mlp net = make(1, 1);
  const torch::Tensor x = torch::randn({4, 1}, torch::kDouble), t = torch::rand({4}, torch::kDouble);
  const MlpKernel kernel(*net);
  MlpTape tape;
  zero_gradients(net->parameters());
  auto run = [&] {
    kernel.forward(x.data_ptr<double>(), t.data_ptr<double>(), 4, {}, tape);
    torch::Tensor g = torch::ones({1, 4, 1}, torch::kDouble);
    kernel.backward(tape, g.data_ptr<double>(), nullptr);
  };
  run();
  const torch::Tensor once = net->output->weight.grad().clone();
  run();
  EXPECT_LT(test::max_abs_diff(net->output->weight.grad(), 2.0 * once), 1e-13);
}

std::vector<NetCase> net_cases() {
  std::vector<NetCase> cases;
  for (const std::string act : {"tanh", "relu", "gelu", "silu", "softplus"})
    for (const std::string emb : {"raw", "sinusoidal", "fourier"}) cases.push_back({act, emb, 2});
  cases.push_back({"tanh", "raw", 0});
  cases.push_back({"silu", "fourier", 1});
  cases.push_back({"gelu", "raw", 3});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Nets, EveryNet, ::testing::ValuesIn(net_cases()), case_name);

TEST(MlpKernel, RefusesNetsItCannotRun) {
  Mlp single(MlpOptions(2));
  single->to(torch::kFloat);
  std::string why;
  EXPECT_FALSE(MlpKernel::supports(*single, &why));
  EXPECT_NE(why.find("float64"), std::string::npos) << why;
  EXPECT_THROW_WITH(MlpKernel kernel(*single), InvalidArgument, "float64");

  Mlp labelled(MlpOptions(2).num_classes(3));
  labelled->to(torch::kDouble);
  EXPECT_FALSE(MlpKernel::supports(*labelled, &why));
  EXPECT_NE(why.find("class-conditional"), std::string::npos) << why;

  Mlp ok(MlpOptions(2));
  ok->to(torch::kDouble);
  EXPECT_TRUE(MlpKernel::supports(*ok));
}

TEST(MlpKernel, BackwardWithoutDefinedGradientsSaysWhatToDo) {
  Mlp net(MlpOptions(1));
  net->to(torch::kDouble);
  const MlpKernel kernel(*net);
  MlpTape tape;
  const double x = 0.3, t = 0.5;
  kernel.forward(&x, &t, 1, {}, tape);
  double g = 1.0;
  EXPECT_THROW_WITH(kernel.backward(tape, &g, nullptr), InvalidArgument, "zero_gradients");
}

}  // namespace
}  // namespace sdegen
