#ifndef MODELPOOL_LIB_MODELS_ATTENTION_BIAS_H_
#define MODELPOOL_LIB_MODELS_ATTENTION_BIAS_H_

#include <limits>

#include "c10/core/ScalarType.h"
#include "c10/util/BFloat16.h"
#include "c10/util/Half.h"

namespace modelpool {

// The most negative value of `dtype`: what transformers adds to the attention scores of
// masked keys.
inline double LowestOf(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::BFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case c10::ScalarType::Half:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case c10::ScalarType::Double:
      return std::numeric_limits<double>::lowest();
    default:
      return std::numeric_limits<float>::lowest();
  }
}

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_ATTENTION_BIAS_H_
