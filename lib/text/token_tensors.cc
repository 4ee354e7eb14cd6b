#include "modelpool/text/token_tensors.h"

#include <algorithm>

namespace modelpool {

TokenTensors MakeTokenTensors(const EncodedBatch& batch, int32_t pad_id,
                              int64_t pad_to_multiple_of) {
  const auto rows = static_cast<int64_t>(batch.ids.size());
  int64_t length = batch.max_length();
  if (pad_to_multiple_of > 1 && length > 0) {
    length = (length + pad_to_multiple_of - 1) / pad_to_multiple_of * pad_to_multiple_of;
  }
  const auto options = torch::TensorOptions().dtype(torch::kInt64);
  TokenTensors tensors{torch::full({rows, length}, static_cast<int64_t>(pad_id), options),
                       torch::zeros({rows, length}, options)};
  auto ids = tensors.input_ids.accessor<int64_t, 2>();
  auto mask = tensors.attention_mask.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<int32_t>& row = batch.ids[r];
    for (size_t c = 0; c < row.size(); ++c) {
      ids[r][c] = row[c];
      mask[r][c] = 1;
    }
  }
  return tensors;
}

}  // namespace modelpool
