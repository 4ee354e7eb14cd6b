#include "modelpool/text/token_tensors.h"

#include <catch2/catch.hpp>

namespace modelpool {
namespace {

TEST_CASE("MakeTokenTensors pads to the longest row rounded up to a multiple") {
  EncodedBatch batch;
  batch.ids = {{101, 7, 102}, {101, 8, 9, 10, 11, 12, 13, 14, 15, 102}};
  const TokenTensors t = MakeTokenTensors(batch, /*pad_id=*/0);
  REQUIRE(t.input_ids.sizes() == torch::IntArrayRef({2, 16}));
  CHECK(t.input_ids.dtype() == torch::kInt64);
  CHECK(t.attention_mask.dtype() == torch::kInt64);
  CHECK(t.input_ids[0][2].item<int64_t>() == 102);
  CHECK(t.input_ids[0][3].item<int64_t>() == 0);
  CHECK(t.input_ids[1][9].item<int64_t>() == 102);
  CHECK(t.attention_mask.sum(1)[0].item<int64_t>() == 3);
  CHECK(t.attention_mask.sum(1)[1].item<int64_t>() == 10);
  CHECK(t.attention_mask[1][10].item<int64_t>() == 0);
}

TEST_CASE("MakeTokenTensors uses the pad id and can skip the rounding") {
  EncodedBatch batch;
  batch.ids = {{5}, {5, 6, 1}};
  const TokenTensors t = MakeTokenTensors(batch, /*pad_id=*/3, /*pad_to_multiple_of=*/1);
  REQUIRE(t.input_ids.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(t.input_ids[0][1].item<int64_t>() == 3);
  CHECK(t.input_ids[0][2].item<int64_t>() == 3);
}

TEST_CASE("MakeTokenTensors of an empty batch is empty") {
  const TokenTensors t = MakeTokenTensors(EncodedBatch{}, 0);
  CHECK(t.input_ids.sizes() == torch::IntArrayRef({0, 0}));
  CHECK(t.attention_mask.sizes() == torch::IntArrayRef({0, 0}));
}

}  // namespace
}  // namespace modelpool
