#pragma once
// Error types. Bad input is refused at the boundary with one of these; the message names the
// offending value and what was expected. Numeric trouble inside a solve is reported in the
// result (see solver/solution.h) and turned into a NumericError by the caller that needs it.
#include <stdexcept>
#include <string>

namespace sdegen {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A value given by the user (a name, a number, a file's contents) is not acceptable.
struct InvalidArgument : Error {
  using Error::Error;
};

// A file could not be read, written or parsed.
struct IoError : Error {
  using Error::Error;
};

// Another process of a data-parallel run (train/distributed.h) could not be reached: it never
// arrived, stopped, or the network between them failed.
struct DistributedError : Error {
  using Error::Error;
};

// A computation produced a non-finite value or could not finish (step limit, underflow).
struct NumericError : Error {
  using Error::Error;
};

}  // namespace sdegen
