#ifndef MODELPOOL_LIB_MODELS_KERNELS_OVERLAPPED_LAUNCH_H_
#define MODELPOOL_LIB_MODELS_KERNELS_OVERLAPPED_LAUNCH_H_

// Plain CUDA, no libtorch, as the other kernels' headers.

namespace modelpool::kernels {

// Whether our kernels may start while the kernel before them finishes on CUDA device `device`
// (Note [Overlapped launches]): compute capability 9 or later, and the kernels built from
// compute_90 or later PTX, without which they have no wait and an overlapped launch would race.
// Asked of CUDA once a device; thread-safe.
bool OverlappedLaunchRunsOn(int device);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_OVERLAPPED_LAUNCH_H_
