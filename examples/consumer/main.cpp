// Uses a trained model through sdegen's stable API (sdegen/sdegen.h) only: loads a run directory,
// draws samples with a chosen solver and seed, and scores them and a shifted copy by their
// log-likelihood. Usage: sdegen_consumer RUN_DIR [N]
#include <sdegen/sdegen.h>

#include <cstdlib>
#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " RUN_DIR [N]\n";
    return 2;
  }
  try {
    const sdegen::Model model = sdegen::Model::load(argv[1]);
    const int64_t n = argc > 2 ? std::atoll(argv[2]) : 200;
    sdegen::SampleOptions options;
    options.solver = "rk4";
    options.steps = 20;
    options.seed = 7;
    const torch::Tensor x = model.sample(n, options);
    const torch::Tensor again = model.sample(n, options);
    std::cout << "kind " << model.kind() << "\n";
    std::cout << "shape";
    for (const int64_t s : model.shape()) std::cout << " " << s;
    std::cout << "\n";
    std::cout << "samples " << x.size(0) << " mean " << x.mean().item<double>() << " std " << x.std().item<double>()
              << "\n";
    std::cout << "same seed, same samples: " << (torch::equal(x, again) ? "yes" : "no") << "\n";
    if (!model.is_image()) {
      const double own = model.log_likelihood(x).mean().item<double>();
      const double shifted = model.log_likelihood(x + 3.0 * x.std()).mean().item<double>();
      std::cout << "mean log-likelihood of the samples " << own << ", shifted by 3 std " << shifted << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sdegen_consumer: " << e.what() << "\n";
    return 1;
  }
}
