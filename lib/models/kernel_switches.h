#ifndef MODELPOOL_LIB_MODELS_KERNEL_SWITCHES_H_
#define MODELPOOL_LIB_MODELS_KERNEL_SWITCHES_H_

// The environment variables that turn the models' GPU kernels off or swap them, for comparison
// (the README's table of variables): read in one place, with the same reading of each value.

#include "modelpool/base/settings.h"

namespace modelpool {

// Which kernel runs a BERT-family encoder's attention over packed rows (Note [Attention
// kernels]).
enum class BertAttention { kPacked, kFlash, kEfficient };

struct KernelSwitches {
  // MODELPOOL_FUSED_KERNELS (1/0, true/false, yes/no, on/off): the fused epilogues
  // (Note [Fused epilogues]), and greedy search's step kernels (Note [Greedy step in two
  // kernels]).
  bool fused_kernels = true;
  // MODELPOOL_BERT_ATTENTION (packed, flash, efficient): our kernel for short packed rows
  // (Note [Packed short-row attention]), flash attention, or the memory-efficient kernel.
  BertAttention bert_attention = BertAttention::kPacked;
  // MODELPOOL_DECODER_ATTENTION (kernels, matmul): the decoder's attention kernels, or matrix
  // products (Note [Decoder attention kernels]).
  bool decoder_kernels = true;
  // MODELPOOL_OVERLAPPED_LAUNCHES (1/0, true/false, yes/no, on/off): our kernels start while the
  // kernel before them finishes, on Hopper (Note [Overlapped launches]).
  bool overlapped_launches = true;
};

// The switches `lookup` (the process environment when null) gives. A value it cannot read keeps
// that switch's default and is reported as a warning naming the variable and what it takes; a
// value of more than 64 characters is one it cannot read, and the warning shows its first 64.
KernelSwitches ReadKernelSwitches(const Settings::EnvLookup& lookup = nullptr);

// The process's switches, read once, at the first call. Thread-safe.
const KernelSwitches& ProcessKernelSwitches();

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_KERNEL_SWITCHES_H_
