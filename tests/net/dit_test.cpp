// The diffusion transformer: patchify and unpatchify, the position embedding, the adaLN-Zero
// block (the identity at initialisation, and a hand-written reference once it has moved), the
// network's shapes, zero start and conditioning, its configuration as JSON, and its refusals.
// Tiny configurations (8x8 images, 16 features) keep the file well under a second.
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>

#include "sdegen/core/error.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/net/dit.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

DiTOptions tiny(int64_t channels = 1, int64_t size = 8, int64_t patch = 2) {
  return DiTOptions(channels, size, size).patch(patch).hidden(16).depth(2).heads(2).mlp_ratio(2.0);
}

// Every parameter drawn from N(0, 0.3^2): the zero-initialised maps move, as after training.
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.normal_(0.0, 0.3);
}

TEST(DiT, PatchifyCutsRowMajorPatchesAndUnpatchifyPutsThemBack) {
  const torch::Tensor x = torch::arange(2 * 3 * 4 * 6, torch::kDouble).reshape({2, 3, 4, 6});
  const torch::Tensor tokens = dit_patchify(x, 2);
  ASSERT_EQ(tokens.sizes(), torch::IntArrayRef({2, 6, 12}));
  // Token 4 is patch (row 1, column 1): pixels (2..3, 2..3); its values run (row, column, channel).
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t ch = 0; ch < 3; ++ch)
        EXPECT_EQ(tokens[1][4][(r * 2 + c) * 3 + ch].item<double>(), x[1][ch][2 + r][2 + c].item<double>());
  EXPECT_TRUE(torch::equal(dit_unpatchify(tokens, 2, 3, 4, 6), x));
  EXPECT_TRUE(torch::equal(dit_unpatchify(dit_patchify(x, 1), 1, 3, 4, 6), x));
  EXPECT_THROW_WITH(dit_patchify(x, 4), InvalidArgument, "multiples of 4");
  EXPECT_THROW_WITH(dit_unpatchify(tokens, 2, 3, 4, 4), InvalidArgument, "are not the 2x2 patches of a 3x4x4 image");
}

TEST(DiT, PositionEmbeddingIsSinCosOfTheRowThenTheColumn) {
  const int64_t dim = 8;
  const torch::Tensor e = dit_position_embedding(3, 4, dim);
  ASSERT_EQ(e.sizes(), torch::IntArrayRef({12, dim}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < dim / 4; ++k) {
        const double w = std::pow(10000.0, -static_cast<double>(k) / (dim / 4));
        const int64_t token = i * 4 + j;
        EXPECT_NEAR(e[token][k].item<double>(), std::sin(i * w), 1e-12);
        EXPECT_NEAR(e[token][dim / 4 + k].item<double>(), std::cos(i * w), 1e-12);
        EXPECT_NEAR(e[token][dim / 2 + k].item<double>(), std::sin(j * w), 1e-12);
        EXPECT_NEAR(e[token][3 * dim / 4 + k].item<double>(), std::cos(j * w), 1e-12);
      }
  // Every token has its own embedding.
  EXPECT_EQ(std::get<0>(torch::unique_dim(e, 0)).size(0), 12);
}

TEST(DiTBlock, IsTheIdentityAtInitialisationAndNotOnceItsModulationMoves) {
  torch::manual_seed(1);
  DiTBlock block(16, 2, 2.0);
  const torch::Tensor h = torch::randn({3, 5, 16}), c = torch::randn({3, 16});
  EXPECT_TRUE(torch::equal(block->forward(h, c), h));
  {
    torch::NoGradGuard no_grad;
    block->modulation->weight.normal_(0.0, 0.1);
  }
  EXPECT_GT(max_abs_diff(block->forward(h, c), h), 1e-3);
}

TEST(DiTBlock, MatchesAPerHeadReferenceOnceEveryWeightHasMoved) {
  torch::manual_seed(2);
  const int64_t hidden = 8, heads = 2, d = 4, n = 3;
  DiTBlock block(hidden, heads, 2.0);
  randomise(*block);
  block->to(torch::kDouble);
  const torch::Tensor h = torch::randn({2, n, hidden}, torch::kDouble), c = torch::randn({2, hidden}, torch::kDouble);
  const torch::Tensor out = block->forward(h, c);
  auto layer_norm = [](const torch::Tensor& v) {
    const torch::Tensor mean = v.mean(-1, true), var = (v - mean).pow(2).mean(-1, true);
    return (v - mean) / torch::sqrt(var + 1e-6);
  };
  auto linear = [](const torch::nn::Linear& l, const torch::Tensor& v) {
    return torch::matmul(v, l->weight.t()) + l->bias;
  };
  torch::NoGradGuard no_grad;
  for (int64_t b = 0; b < 2; ++b) {
    const torch::Tensor m = linear(block->modulation, c[b]);  // [6 hidden]
    auto part = [&](int64_t i) { return m.narrow(0, i * hidden, hidden); };
    const torch::Tensor a_in = layer_norm(h[b]) * (1 + part(1)) + part(0);
    const torch::Tensor qkv = linear(block->qkv, a_in);  // [n, 3 hidden]
    torch::Tensor attended = torch::zeros({n, hidden}, torch::kDouble);
    for (int64_t head = 0; head < heads; ++head)
      for (int64_t i = 0; i < n; ++i) {
        const torch::Tensor q = qkv[i].narrow(0, head * d, d);
        std::vector<double> scores;
        for (int64_t j = 0; j < n; ++j)
          scores.push_back((q * qkv[j].narrow(0, hidden + head * d, d)).sum().item<double>() / std::sqrt(double(d)));
        double total = 0.0;
        for (double& s : scores) total += (s = std::exp(s));
        for (int64_t j = 0; j < n; ++j)
          attended[i].narrow(0, head * d, d) += scores[j] / total * qkv[j].narrow(0, 2 * hidden + head * d, d);
      }
    const torch::Tensor after_attention = h[b] + part(2) * linear(block->projection, attended);
    const torch::Tensor m_in = layer_norm(after_attention) * (1 + part(4)) + part(3);
    const torch::Tensor u = linear(block->fc1, m_in);
    const torch::Tensor gelu = 0.5 * u * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u.pow(3))));
    const torch::Tensor expected = after_attention + part(5) * linear(block->fc2, gelu);
    EXPECT_LT(max_abs_diff(out[b], expected), 1e-12) << "example " << b;
  }
}

// The net's linear maps run as torch::linear (one addmm with the bias folded in); this is the
// first formulation, each module's own forward (matmul, then the bias), written out in full. In
// float32, where the two round differently, they agree to 1e-6 relative, values and gradients.
TEST(DiT, LinearMapsByOneAddmmMatchTheModulesOwnForwardInFloat32) {
  torch::manual_seed(5);
  DiT net(tiny(1, 8, 2).num_classes(3));
  randomise(*net);
  const torch::Tensor x = torch::randn({3, 1, 8, 8}), t = torch::rand({3});
  const torch::Tensor labels = torch::tensor(std::vector<int64_t>{0, 2, kNullLabel}), rows = torch::tensor({0, 2, 3});
  auto modulate = [](const torch::Tensor& v, const torch::Tensor& shift, const torch::Tensor& scale) {
    return v * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
  };
  auto reference = [&] {
    DiTImpl& d = *net;
    torch::Tensor c = d.time_output->forward(torch::silu(d.time_hidden->forward(d.time_features->forward(t))));
    c = torch::silu(c + d.class_embedding->forward(rows));
    torch::Tensor h = d.patch_embedding->forward(x).flatten(2).transpose(1, 2) + d.position_embedding;
    const int64_t n = h.size(1), hidden = h.size(2);
    for (const auto& module : *d.blocks) {
      DiTBlockImpl& b = *module->as<DiTBlockImpl>();
      const int64_t dh = hidden / b.heads;
      const std::vector<torch::Tensor> m = b.modulation->forward(c).chunk(6, 1);
      const torch::Tensor qkv =
          b.qkv->forward(modulate(b.norm1->forward(h), m[0], m[1])).reshape({3, n, 3, b.heads, dh}).permute({2, 0, 3, 1, 4});
      const torch::Tensor w = torch::softmax(torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(double(dh)), -1);
      h = h + m[2].unsqueeze(1) * b.projection->forward(torch::matmul(w, qkv[2]).transpose(1, 2).reshape({3, n, hidden}));
      h = h + m[5].unsqueeze(1) *
                  b.fc2->forward(torch::gelu(b.fc1->forward(modulate(b.norm2->forward(h), m[3], m[4])), "tanh"));
    }
    const std::vector<torch::Tensor> m = d.final_modulation->forward(c).chunk(2, 1);
    return dit_unpatchify(d.final_linear->forward(modulate(d.final_norm->forward(h), m[0], m[1])), 2, 1, 8, 8);
  };
  auto run = [&](const std::function<torch::Tensor()>& forward) {
    net->zero_grad();
    const torch::Tensor out = forward();
    out.pow(2).sum().backward();
    std::vector<torch::Tensor> values = {out.detach()};
    for (const auto& p : net->parameters()) values.push_back(p.grad().clone());
    return values;
  };
  const auto fused = run([&] { return net(x, t, Condition(labels)); }), expected = run(reference);
  const auto names = net->named_parameters().keys();
  ASSERT_EQ(fused.size(), expected.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    const std::string what = i == 0 ? "output" : "gradient of " + names[i - 1];
    const double scale = expected[i].abs().max().item<double>();
    ASSERT_GT(scale, 0.0) << what;
    EXPECT_LT(max_abs_diff(fused[i], expected[i]) / scale, 1e-6) << what;
  }
}

TEST(DiT, OutputHasTheInputsShapeForAnyPatchAndStartsAtZero) {
  for (const int64_t patch : {1, 2, 4}) {
    DiT net(tiny(3, 8, patch).num_classes(5));
    const torch::Tensor x = torch::randn({4, 3, 8, 8});
    const torch::Tensor out = net(x, torch::rand({4}), Condition(torch::tensor({0, 4, -1, 2})));
    ASSERT_EQ(out.sizes(), x.sizes()) << patch;
    EXPECT_TRUE(torch::equal(out, torch::zeros_like(x))) << patch;
    EXPECT_EQ(net(x, torch::tensor(0.5)).sizes(), x.sizes());
  }
  DiT wide(tiny(1, 8, 2).out_channels(2));
  EXPECT_EQ(wide(torch::randn({2, 1, 8, 8}), torch::rand({2})).sizes(), torch::IntArrayRef({2, 2, 8, 8}));
  EXPECT_EQ(DiT(tiny(3, 4, 1)).ptr()->position_embedding.sizes(), torch::IntArrayRef({1, 16, 16}));
}

TEST(DiT, OnceTrainedTheOutputDependsOnTimeLabelAndEveryExampleAlone) {
  torch::manual_seed(3);
  DiT net(tiny(1, 8, 2).num_classes(3));
  randomise(*net);
  net->to(torch::kDouble);
  const torch::Tensor x = torch::randn({3, 1, 8, 8}, torch::kDouble);
  const torch::Tensor t = torch::full({3}, 0.3, torch::kDouble);
  const torch::Tensor labels = torch::tensor({0, 1, 2});
  const torch::Tensor out = net(x, t, Condition(labels));
  EXPECT_GT(max_abs_diff(out, net(x, torch::full({3}, 0.7, torch::kDouble), Condition(labels))), 1e-6);
  EXPECT_GT(max_abs_diff(out, net(x, t, Condition(torch::tensor({1, 2, 0})))), 1e-6);
  // No labels means the null label for every example.
  EXPECT_LT(max_abs_diff(net(x, t), net(x, t, Condition(torch::full({3}, kNullLabel)))), 1e-14);
  // Example 0 alone gives the same output as in the batch.
  EXPECT_LT(max_abs_diff(net(x.narrow(0, 0, 1), t.narrow(0, 0, 1), Condition(labels.narrow(0, 0, 1))),
                         out.narrow(0, 0, 1)),
            1e-12);
  // Every parameter gets a gradient.
  net(x, t, Condition(labels)).pow(2).sum().backward();
  for (const auto& p : net->named_parameters())
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
}

TEST(DiT, ConfigRebuildsTheNetAndAModelTrainsWithIt) {
  const DiTOptions o = tiny(1, 8, 2).num_classes(2);
  const nlohmann::json j = to_json(o);
  EXPECT_EQ(j.at("type"), "dit");
  NetworkPtr net = make_network(j);
  EXPECT_EQ(net->config(), j);
  EXPECT_EQ(net->shape(), std::vector<int64_t>({1, 8, 8}));
  EXPECT_EQ(net->num_classes(), 2);
  // A flow holds it as it holds any network, and a few steps on two images lower its loss.
  torch::manual_seed(4);
  AffineModelOptions m = affine_model_defaults("flow", 1);
  m.net = j;
  m.dtype = "float32";
  auto model = make_model(to_json(m));
  const torch::Tensor y = torch::cat({-torch::ones({16, 1, 8, 8}), torch::ones({16, 1, 8, 8})}).to(torch::kFloat);
  const torch::Tensor labels = torch::cat({torch::zeros({16}, torch::kLong), torch::ones({16}, torch::kLong)});
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  auto loss_at = [&](int64_t seed) {
    torch::manual_seed(seed);
    return model->loss(y, Condition(labels));
  };
  const double before = loss_at(9).item<double>();
  for (int64_t step = 0; step < 60; ++step) {
    adam.zero_grad();
    loss_at(100 + step).backward();
    adam.step();
  }
  EXPECT_LT(loss_at(9).item<double>(), 0.5 * before);
}

TEST(DiT, RefusesBadOptionsAndInputsNamingThem) {
  EXPECT_THROW_WITH(DiT(tiny(1, 6, 4)), InvalidArgument, "a 6x6 image cannot be cut into 4x4 patches");
  EXPECT_THROW_WITH(DiT(tiny().hidden(18)), InvalidArgument, "hidden must be a positive multiple of 4");
  EXPECT_THROW_WITH(DiT(tiny().heads(3)), InvalidArgument, "heads must be >= 1 and divide hidden = 16, got 3");
  EXPECT_THROW_WITH(DiT(tiny().depth(0)), InvalidArgument, "depth must be >= 1");
  EXPECT_THROW_WITH(DiT(tiny().mlp_ratio(0.0)), InvalidArgument, "mlp_ratio must be positive");
  DiT net(tiny());
  EXPECT_THROW_WITH(net(torch::randn({2, 1, 4, 4}), torch::rand({2})), InvalidArgument, "DiT");
  EXPECT_THROW_WITH(net(torch::randn({2, 1, 8, 8}), torch::rand({2}), Condition(torch::tensor({0, 1}))),
                    InvalidArgument, "DiT");
  nlohmann::json j = to_json(tiny());
  j["dpeth"] = 2;
  EXPECT_THROW_WITH(dit_options_from_json(j), InvalidArgument, "unknown DiT option 'dpeth'");
  j = to_json(tiny());
  j["depth"] = 2.5;
  EXPECT_THROW_WITH(dit_options_from_json(j), InvalidArgument, "DiT options: 'depth' must be an integer, got 2.5");
  j.erase("depth");
  EXPECT_THROW_WITH(dit_options_from_json(j), InvalidArgument, "DiT options: missing key 'depth'");
}

}  // namespace
}  // namespace sdegen
