#pragma once
// sdegen eval on an image checkpoint (apps/image_eval.cpp): fd beside fd_floor, class accuracy and
// the predicted-class histogram at each guidance weight, and bits per dimension.
#include <string>

#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/image_evaluate.h"

namespace sdegen::app {

struct ImageEvalArgs {
  std::string checkpoint;
  std::string data;        // empty: the data the model was trained on
  std::string classifier;  // empty: the cached Fashion-MNIST classifier (trained on first use)
  ImageEvalOptions options;
  int threads = 1;
  std::string out = "eval.json";
  std::string grid;        // a PNG grid of the first weight's images (empty: none)
};

void run_image_eval(const ImageEvalArgs& a, TrainedModel& t);

}  // namespace sdegen::app
