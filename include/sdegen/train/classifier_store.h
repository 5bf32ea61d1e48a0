#pragma once
// A trained classifier on disk: one directory holding
//
//   config.json  {"format": "sdegen-classifier", "version": 1, "net": ClassifierOptions,
//                 "classes": [names], "data": {"train", "test", "train_images", "test_images",
//                 "shape"}, "training": ClassifierTrainOptions, "test_accuracy", "seconds",
//                 "files": {"weights.pt": {"bytes", "crc32"}}}
//   weights.pt   the network's parameters and buffers (torch::nn::Module::save layout)
//
// Saving follows the checkpoints' discipline (train/checkpoint.h): everything is written to
// <dir>.tmp/, config.json is read back, then an existing <dir> is renamed to <dir>.old, the new
// one renamed into place and the old one removed, so a complete classifier is on disk at every
// moment; if a crash leaves only <dir>.old, loading uses it. A folder holding anything but these
// two files is never replaced (it is not a classifier, and the rename would delete the rest).
//
// Loading checks weights.pt against its recorded size and CRC-32, then every tensor's name, shape
// and dtype against the network config.json describes, and that every value is finite.
// Errors: a missing, corrupt, truncated, changed or non-finite file is an IoError naming it; weights
// that do not fit the configured network (another shape) are an InvalidArgument naming the file
// and the tensor; a classifier that may not be saved (non-finite weights) is a NumericError.
#include <string>

#include "sdegen/train/classifier_training.h"

namespace sdegen {

// Writes `classifier` as the directory `dir` (its parent is created if needed), as above.
void save_classifier(const std::string& dir, const TrainedClassifier& classifier);

// The classifier in `dir` (or <dir>.old), checked as above, in eval mode.
TrainedClassifier load_classifier(const std::string& dir);

// Refuses (IoError) a `dir` that holds anything but a classifier's files, and one that holds a
// classifier unless `overwrite`: so that a caller can refuse before spending time on training.
void check_classifier_destination(const std::string& dir, bool overwrite);

// True when `dir` or <dir>.old holds a config.json: a classifier, intact or not, is there.
bool has_classifier(const std::string& dir);

}  // namespace sdegen
