// The U-Net: shapes, the zero start, what it depends on after training starts, its gradients,
// the independence of a batch's examples, its configuration as JSON, and its refusals. Tiny
// configurations (8 channels, 8x8 images) keep the file to about a second.
#include <nlohmann/json.hpp>

#include "sdegen/core/error.h"
#include "sdegen/net/unet.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

// 8x8 -> 4x4 at 8 and 16 channels, attention at 4x4 (and in the middle).
UNetOptions tiny(int64_t channels = 1, int64_t size = 8) {
  return UNetOptions(channels, size, size)
      .base_channels(8)
      .channel_mult({1, 2})
      .blocks_per_level(1)
      .attention_resolutions({size / 2})
      .groups(4);
}

// One optimiser step on a random regression target: the output conv leaves zero, so the
// output depends on everything before it.
void take_one_step(UNet& net, const Condition& condition = {}) {
  const auto shape = net->shape();
  const torch::Tensor x = torch::randn({4, shape[0], shape[1], shape[2]});
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1));
  sgd.zero_grad();
  const torch::Tensor out = net(x, torch::rand({4}), condition);
  torch::mse_loss(out, torch::randn_like(out)).backward();
  sgd.step();
}

int64_t count_modules_named(torch::nn::Module& m, const std::string& suffix) {
  int64_t n = 0;
  for (const auto& item : m.named_modules()) {
    const std::string& key = item.key();
    n += key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return n;
}

TEST(UNetAttentionBlock, MatchesAPerHeadPerPositionReference) {
  const int64_t channels = 8, heads = 2, hc = channels / heads;
  UNetAttentionBlock block(channels, heads, /*groups=*/4);
  const torch::Tensor h = torch::randn({2, channels, 3, 3});
  const torch::Tensor qkv = block->qkv(block->norm(h)).flatten(2);  // [B, 3C, positions]
  torch::Tensor attended = torch::zeros({2, channels, 9});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t head = 0; head < heads; ++head) {
      const torch::Tensor q = qkv[b].narrow(0, head * hc, hc), k = qkv[b].narrow(0, channels + head * hc, hc),
                          v = qkv[b].narrow(0, 2 * channels + head * hc, hc);
      for (int64_t i = 0; i < 9; ++i) {
        const torch::Tensor w = torch::exp((q.select(1, i).unsqueeze(1) * k).sum(0) / std::sqrt(double(hc)));
        attended[b].narrow(0, head * hc, hc).select(1, i).copy_((v * (w / w.sum())).sum(1));
      }
    }
  const torch::Tensor expected = h + block->projection(attended.reshape({2, channels, 3, 3}));
  EXPECT_LT(max_abs_diff(block(h), expected), 1e-12);
}

TEST(UNet, OutputHasTheInputsShapeForGreyRgbAnd28x28) {
  for (const int64_t c : {1, 3}) {
    UNet net(tiny(c));
    const torch::Tensor out = net(torch::randn({2, c, 8, 8}), torch::rand({2}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, c, 8, 8}));
    EXPECT_EQ(net->shape(), (std::vector<int64_t>{c, 8, 8}));
    EXPECT_EQ(net(torch::randn({2, c, 8, 8}), torch::tensor(0.5)).sizes(), out.sizes());  // one t for all
  }
  // 28 -> 14 -> 7 with attention at 7 only: one down block, two up blocks and the middle.
  UNet mnist(UNetOptions(1, 28, 28).base_channels(8).channel_mult({1, 2, 2}).blocks_per_level(1).groups(4));
  EXPECT_EQ(mnist(torch::randn({2, 1, 28, 28}), torch::rand({2})).sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_EQ(count_modules_named(*mnist, "attention"), 4);
  EXPECT_EQ(count_modules_named(*mnist, "resample"), 4);  // two stride-2 convs, two upsampling convs
  // A non-square image and a different number of output channels.
  UNet wide(tiny(2).height(4).width(12).attention_resolutions({}).out_channels(5));
  EXPECT_EQ(wide(torch::randn({3, 2, 4, 12}), torch::rand({3})).sizes(), (std::vector<int64_t>{3, 5, 4, 12}));
}

TEST(UNet, WorksInFloat32AndFloat64) {
  UNet net(tiny());
  net->to(torch::kFloat);
  EXPECT_EQ(net(torch::randn({2, 1, 8, 8}, torch::kFloat), torch::rand({2}, torch::kFloat)).scalar_type(),
            torch::kFloat);
  net->to(torch::kDouble);
  // A float32 t is converted to x's dtype.
  EXPECT_EQ(net(torch::randn({2, 1, 8, 8}, torch::kDouble), torch::rand({2}, torch::kFloat)).scalar_type(),
            torch::kDouble);
}

TEST(UNet, StartsAtExactlyZero) {
  UNet net(tiny(3).num_classes(4));
  const torch::Tensor out = net(torch::randn({5, 3, 8, 8}), torch::rand({5}), torch::tensor({0, 1, 2, 3, -1}));
  EXPECT_EQ(out.abs().max().item<double>(), 0.0);
}

TEST(UNet, AfterOneStepTheOutputDependsOnTimeAndLabel) {
  UNet net(tiny().num_classes(3));
  take_one_step(net, torch::tensor({0, 1, 2, -1}));
  net->eval();
  const torch::Tensor x = torch::randn({2, 1, 8, 8});
  const auto out = [&](double t, const Condition& c) { return net(x, torch::full({2}, t), c); };
  const torch::Tensor zeros = torch::zeros({2}, torch::kLong);
  EXPECT_GT(out(0.3, zeros).abs().max().item<double>(), 1e-4);
  EXPECT_GT(max_abs_diff(out(0.3, zeros), out(0.7, zeros)), 1e-4);
  EXPECT_GT(max_abs_diff(out(0.3, zeros), out(0.3001, zeros)), 1e-7);  // the high frequencies resolve 1e-4
  const torch::Tensor ones = torch::ones({2}, torch::kLong), nulls = torch::full({2}, kNullLabel);
  EXPECT_GT(max_abs_diff(out(0.3, zeros), out(0.3, ones)), 1e-4);
  EXPECT_GT(max_abs_diff(out(0.3, zeros), out(0.3, nulls)), 1e-4);
  EXPECT_GT(max_abs_diff(out(0.3, ones), out(0.3, nulls)), 1e-4);
  EXPECT_EQ(max_abs_diff(out(0.3, Condition()), out(0.3, nulls)), 0.0);
}

TEST(UNet, GradientsReachEveryParameterOnceTheOutputLayerHasMoved) {
  UNet net(tiny(3).num_classes(2));
  const torch::Tensor x = torch::randn({4, 3, 8, 8}), t = torch::rand({4}), target = torch::randn_like(x);
  const torch::Tensor labels = torch::tensor({0, 1, -1, 1});
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1));
  torch::mse_loss(net(x, t, labels), target).backward();
  // The zero output conv blocks every gradient but its own on the first step.
  for (const auto& p : net->named_parameters()) {
    const bool output = p.key().rfind("output_conv.", 0) == 0;
    const double g = p.value().grad().defined() ? p.value().grad().abs().sum().item<double>() : 0.0;
    if (output) EXPECT_GT(g, 0.0) << p.key();
    else EXPECT_EQ(g, 0.0) << p.key();
  }
  sgd.step();
  sgd.zero_grad();
  torch::mse_loss(net(x, t, labels), target).backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(UNet, FiniteDifferencesMatchAutogradInXAndT) {
  UNet net(tiny(2).num_classes(2));  // float64: the tests' default dtype
  take_one_step(net);
  net->eval();
  const torch::Tensor x = torch::randn({2, 2, 8, 8}).requires_grad_(true);
  const torch::Tensor t = torch::tensor({0.3, 0.8}).requires_grad_(true);
  const torch::Tensor labels = torch::tensor({1, -1}), weights = torch::randn({2, 2, 8, 8});
  const auto objective = [&](const torch::Tensor& xs, const torch::Tensor& ts) {
    return (net(xs, ts, labels) * weights).sum();
  };
  const auto grads = torch::autograd::grad({objective(x, t)}, {x, t});
  torch::NoGradGuard no_grad;
  const double h = 1e-5;
  for (const auto& index : std::vector<std::vector<int64_t>>{{0, 1, 3, 5}, {1, 0, 7, 0}}) {
    torch::Tensor e = torch::zeros_like(x);
    e.index_put_({index[0], index[1], index[2], index[3]}, h);
    const double fd = (objective(x + e, t) - objective(x - e, t)).item<double>() / (2 * h);
    const double ad = grads[0].index({index[0], index[1], index[2], index[3]}).item<double>();
    EXPECT_NEAR(fd, ad, 1e-6 * (1.0 + std::abs(ad))) << c10::IntArrayRef(index);
    EXPECT_GT(std::abs(ad), 1e-6) << c10::IntArrayRef(index);  // not trivially zero
  }
  // A smaller step in t: its highest frequency (1000) makes the truncation error 1e6 times larger.
  const double h_t = 1e-6;
  const torch::Tensor dt = torch::tensor({0.0, h_t});
  const double fd_t = (objective(x, t + dt) - objective(x, t - dt)).item<double>() / (2 * h_t);
  EXPECT_NEAR(fd_t, grads[1][1].item<double>(), 1e-6 * (1.0 + std::abs(fd_t)));
}

TEST(UNet, ExamplesInABatchDoNotMix) {
  UNet net(tiny(3).num_classes(2));
  take_one_step(net);
  net->eval();
  const torch::Tensor x = torch::randn({3, 3, 8, 8}), t = torch::rand({3}), labels = torch::tensor({0, 1, -1});
  const torch::Tensor before = net(x, t, labels);
  torch::Tensor x2 = x.clone(), t2 = t.clone(), labels2 = labels.clone();
  x2[1] = torch::randn({3, 8, 8});
  t2[1] = 0.99;
  labels2[1] = 0;
  const torch::Tensor after = net(x2, t2, labels2);
  EXPECT_GT(max_abs_diff(before[1], after[1]), 1e-4);
  EXPECT_LT(max_abs_diff(before[0], after[0]), 1e-12);
  EXPECT_LT(max_abs_diff(before[2], after[2]), 1e-12);
  // One example alone gives what it gives in the batch.
  EXPECT_LT(max_abs_diff(net(x.narrow(0, 2, 1), t.narrow(0, 2, 1), labels.narrow(0, 2, 1))[0], before[2]), 1e-12);
}

TEST(UNet, WorksInsideAnAnyModuleThroughItsDefaultCondition) {
  UNet net(tiny());
  take_one_step(net);
  net->eval();
  torch::nn::AnyModule any(net);
  const torch::Tensor x = torch::randn({2, 1, 8, 8}), t = torch::rand({2});
  EXPECT_EQ(max_abs_diff(any.forward(x, t), net(x, t)), 0.0);
}

TEST(UNet, ConfigRebuildsTheSameArchitectureAndTheStateCarriesOver) {
  UNet a(tiny(3).num_classes(3).out_channels(2).attention_heads(2).time_embedding_dim(12).dropout(0.2));
  take_one_step(a);
  const nlohmann::json config = a->config();
  EXPECT_EQ(config.at("type"), "unet");
  NetworkPtr b = make_network(nlohmann::json::parse(config.dump()));
  EXPECT_EQ(b->config(), config);
  EXPECT_EQ(b->as_mlp(), nullptr);
  EXPECT_EQ(b->shape(), a->shape());
  EXPECT_EQ(b->num_classes(), 3);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  torch::NoGradGuard no_grad;
  for (const auto& p : pa) {
    ASSERT_NE(pb.find(p.key()), nullptr) << p.key();
    ASSERT_EQ(p.value().sizes(), pb[p.key()].sizes()) << p.key();
    pb[p.key()].copy_(p.value());
  }
  const auto ba = a->named_buffers(), bb = b->named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  for (const auto& item : ba) EXPECT_EQ(max_abs_diff(item.value(), bb[item.key()]), 0.0) << item.key();
  a->eval();
  b->eval();
  const torch::Tensor x = torch::randn({2, 3, 8, 8}), t = torch::rand({2}), labels = torch::tensor({2, -1});
  const torch::Tensor out = a(x, t, labels);
  EXPECT_GT(out.abs().max().item<double>(), 1e-4);
  EXPECT_EQ(max_abs_diff(b->forward(x, t, labels), out), 0.0);
}

TEST(UNet, NetworkFactoryKnowsItsName) {
  EXPECT_EQ(network_names(), (std::vector<std::string>{"mlp", "unet", "dit"}));
  EXPECT_THROW_WITH(make_network({{"type", "resnet"}}), InvalidArgument,
                    "unknown network type 'resnet'; valid: mlp, unet, dit");
}

TEST(UNet, RefusesBadOptionsNamingTheNumbers) {
  EXPECT_THROW_WITH(UNet(UNetOptions(1, 30, 30).attention_resolutions({})), InvalidArgument,
                    "UNet: a 30x30 image cannot be halved 2 times (3 levels in channel_mult [1, 2, 2]): "
                    "height and width must be divisible by 4");
  EXPECT_THROW_WITH(UNet(tiny().width(7)), InvalidArgument, "a 8x7 image cannot be halved 1 times");
  EXPECT_THROW_WITH(UNet(tiny().groups(3)), InvalidArgument,
                    "UNet: level 0 has 8 channels (base_channels 8 x channel_mult 1), not divisible by groups = 3");
  EXPECT_THROW_WITH(UNet(tiny().channel_mult({2, 3}).groups(16)), InvalidArgument,
                    "level 1 has 24 channels (base_channels 8 x channel_mult 3), not divisible by groups = 16");
  EXPECT_THROW_WITH(UNet(tiny().attention_resolutions({8, 7})), InvalidArgument,
                    "UNet: attention resolution 7 matches no level; the levels' heights are [8, 4]");
  EXPECT_THROW_WITH(UNet(tiny().attention_heads(3)), InvalidArgument,
                    "UNet: level 1 (4x4) has attention over 16 channels, not divisible by attention_heads = 3");
  // Level 0's 6 channels are not divisible by 5 either, but it has no attention.
  EXPECT_THROW_WITH(UNet(tiny().base_channels(6).groups(3).attention_heads(5)), InvalidArgument,
                    "level 1 (4x4) has attention over 12 channels, not divisible by attention_heads = 5");
  EXPECT_THROW_WITH(UNet(tiny().base_channels(7).groups(7)), InvalidArgument,
                    "base_channels must be even and >= 2");
  EXPECT_THROW_WITH(UNet(tiny().channel_mult({})), InvalidArgument, "channel_mult needs one entry per level, got none");
  EXPECT_THROW_WITH(UNet(tiny().channel_mult({1, 0})), InvalidArgument,
                    "channel_mult entries must be >= 1, got [1, 0]");
  EXPECT_THROW_WITH(UNet(tiny().dropout(1.0)), InvalidArgument, "dropout must be in [0, 1), got 1");
  EXPECT_THROW_WITH(UNet(tiny().blocks_per_level(0)), InvalidArgument, "blocks_per_level must be >= 1, got 0");
  EXPECT_THROW_WITH(UNet(tiny().num_classes(-1)), InvalidArgument, "num_classes must be >= 0");
  EXPECT_THROW_WITH(UNet(UNetOptions(0, 8, 8)), InvalidArgument, "in_channels must be >= 1, got 0");
  EXPECT_THROW_WITH(UNet(tiny().height(0)), InvalidArgument, "height and width must be >= 1, got 0x8");
}

TEST(UNet, RefusesBadInputs) {
  UNet net(tiny());
  const torch::Tensor t = torch::rand({2});
  EXPECT_THROW_WITH(net(torch::randn({2, 1, 8, 7}), t), InvalidArgument,
                    "UNet expects x of shape [batch, 1, 8, 8], got [2, 1, 8, 7]");
  EXPECT_THROW_WITH(net(torch::randn({2, 3, 8, 8}), t), InvalidArgument, "got [2, 3, 8, 8]");
  EXPECT_THROW_WITH(net(torch::randn({2, 64}), t), InvalidArgument, "got [2, 64]");
  EXPECT_THROW_WITH(net(torch::randn({2, 1, 8, 8}), torch::rand({3})), InvalidArgument,
                    "UNet expects t of shape [batch] = [2] or a scalar, got [3]");
  EXPECT_THROW_WITH(net(torch::randn({2, 1, 8, 8}), t, torch::tensor({0, 1})), InvalidArgument,
                    "UNet is unconditional (num_classes = 0) but was given labels");
  UNet conditional(tiny().num_classes(3));
  EXPECT_THROW_WITH(conditional(torch::randn({2, 1, 8, 8}), t, torch::tensor({0, 3})), InvalidArgument,
                    "UNet expects labels in [0, 3) or -1 (no label), got values in [0, 3]");
  EXPECT_THROW_WITH(conditional(torch::randn({2, 1, 8, 8}), t, torch::tensor({-2, 1})), InvalidArgument,
                    "got values in [-2, 1]");
}

TEST(UNetJson, RoundTripAndRefusals) {
  const UNetOptions options = tiny(3).num_classes(5).channel_mult({1, 2}).attention_resolutions({8, 4}).dropout(0.25);
  const nlohmann::json good = to_json(options);
  EXPECT_EQ(to_json(unet_options_from_json(nlohmann::json::parse(good.dump()))), good);
  EXPECT_EQ(good.at("channel_mult"), nlohmann::json::array({1, 2}));

  nlohmann::json j = good;
  j.erase("groups");
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument, "UNet options: missing key 'groups'");
  j = good;
  j["base_channels"] = 8.5;
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument,
                    "UNet options: 'base_channels' must be an integer, got 8.5");
  j = good;
  j["channel_mult"] = {1, 2.5};
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument,
                    "UNet options: 'channel_mult' must be an array of integers, got [1,2.5]");
  j = good;
  j["attention_resolutions"] = 4;
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument, "'attention_resolutions' must be an array of integers");
  j = good;
  j["dropout"] = "0.1";
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument, "'dropout' must be a number");
  j = good;
  j["chanel_mult"] = {1};
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument, "unknown UNet option 'chanel_mult'");
  j = good;
  j["type"] = "mlp";
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument, "UNet options: 'type' must be \"unet\", got \"mlp\"");
  j = good;
  j["height"] = 9;
  EXPECT_THROW_WITH(unet_options_from_json(j), InvalidArgument, "a 9x8 image cannot be halved 1 times");
}

}  // namespace
}  // namespace sdegen
