#ifndef MODELPOOL_LIB_MODELS_KERNELS_GREEDY_PICK_H_
#define MODELPOOL_LIB_MODELS_KERNELS_GREEDY_PICK_H_

#include <cstdint>

// Plain CUDA, no libtorch, as the other kernels' headers.

namespace modelpool::kernels {

// One greedy step's choice for `rows` rows (Note [Greedy step in two kernels]). All pointers are
// to device memory.
struct GreedyPickArgs {
  float* scores;  // [rows, vocab] float32, contiguous; banned tokens are set to -inf in place
  int64_t rows;
  int64_t vocab;
  int64_t* sequences;  // [rows, width] int64: tokens [0, length) so far; the choice goes to length
  int64_t width;
  int64_t length;
  int64_t* lengths;  // [rows] int64: += 1 for each unfinished row
  bool* unfinished;  // [rows]: cleared for rows whose choice is an end-of-sequence id
  const int64_t* eos;
  int64_t eos_count;
  bool ban_eos;           // the minimum length is not reached: no end-of-sequence id may come
  const int64_t* forced;  // when not null, only these ids may come (transformers' forced tokens)
  int64_t forced_count;
  int64_t no_repeat_ngram;  // 0: no ban
  int64_t pad;              // what finished rows continue with
  uint64_t* keys;           // [rows] scratch: zero before the call, left zero after it
};

// GreedyPick()
//
// What one step of greedy search does after the decoder, as generation.cc's tensor operations
// do it: bans repeated n-grams and, before the minimum length, the end-of-sequence ids; keeps
// only the forced ids where given; takes each row's highest score (the lowest id among equals,
// NaN above every number, as argmax); writes it, or `pad` for finished rows, at `length` of the
// row's sequence; counts the lengths and marks rows that end. With `overlap`, the two kernels
// start early as Note [Overlapped launches] says. Returns -1, launching nothing, for arguments it
// does not take (no rows or more than 65,535, `length` outside [1, width), 2^31 ids or more,
// null pointers); otherwise the first failing launch's cudaError_t as an int (0: launched).
int GreedyPick(const GreedyPickArgs& args, void* stream, bool overlap);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_GREEDY_PICK_H_
