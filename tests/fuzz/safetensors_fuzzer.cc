// libFuzzer: any bytes given to the safetensors reader either fail with a status or give
// tensors whose data lies inside the buffer. Run under ASan and UBSan.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "lib/models/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = modelpool::SafetensorsFile::FromBuffer(absl::MakeConstSpan(data, size), "fuzz");
  if (!file.ok()) return 0;
  uint64_t checksum = 0;
  for (const auto& [name, tensor] : (*file)->tensors()) {
    absl::Span<const uint8_t> bytes = (*file)->Data(tensor);
    if (bytes.data() < data || bytes.data() + bytes.size() > data + size) std::abort();
    if (static_cast<int64_t>(bytes.size()) !=
        tensor.num_elements() * modelpool::SafetensorsDTypeSize(tensor.dtype)) {
      std::abort();
    }
    for (uint8_t b : bytes) checksum += b;  // touch every byte: ASan checks the bounds
  }
  return checksum == 1 ? 1 : 0;
}
