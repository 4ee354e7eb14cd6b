#ifndef MODELPOOL_TEXT_TOKEN_TENSORS_H_
#define MODELPOOL_TEXT_TOKEN_TENSORS_H_

#include <torch/torch.h>

#include <cstdint>

#include "modelpool/text/tokenizer.h"

namespace modelpool {

// The ids of a batch as the model takes them: `[batch, length]` int64 tensors on the CPU.
struct TokenTensors {
  torch::Tensor input_ids;       // padded with the tokenizer's pad id
  torch::Tensor attention_mask;  // 1 for ids, 0 for padding
};

// MakeTokenTensors()
//
// Pads every row of `batch` on the right with `pad_id` to the longest row, rounded up to a
// multiple of `pad_to_multiple_of` (1 or less: no rounding), which keeps the set of shapes a
// model sees small. An empty batch gives `[0, 0]` tensors.
TokenTensors MakeTokenTensors(const EncodedBatch& batch, int32_t pad_id,
                              int64_t pad_to_multiple_of = 8);

}  // namespace modelpool

#endif  // MODELPOOL_TEXT_TOKEN_TENSORS_H_
