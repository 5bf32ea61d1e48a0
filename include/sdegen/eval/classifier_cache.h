#pragma once
// The Fashion-MNIST classifier that the image metrics use, trained once per machine and kept in a
// cache folder, so that every evaluation measures in the same feature space.
#include <string>

#include "sdegen/train/classifier_training.h"

namespace sdegen {

// The cache folder: $SDEGEN_CACHE, else $XDG_CACHE_HOME/sdegen, else $HOME/.cache/sdegen (empty
// variables count as unset). IoError when none of the three is set.
std::string cache_root();

// The Fashion-MNIST classifier in <cache_dir>/classifier-fashion-mnist (cache_dir empty:
// cache_root()). On first use it is trained with the default ClassifierOptions and
// ClassifierTrainOptions (threads: `threads`, or torch's current count when 0) on the shipped
// training split, tested on the test split and stored there; a line on stderr says so. A damaged
// cached classifier, or one that is not a 1x28x28 Fashion-MNIST classifier, is refused by name
// (delete the folder to train a new one), never silently replaced.
TrainedClassifier fashion_mnist_classifier(const std::string& cache_dir = "", int64_t threads = 0);

}  // namespace sdegen
