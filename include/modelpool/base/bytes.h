#ifndef MODELPOOL_BASE_BYTES_H_
#define MODELPOOL_BASE_BYTES_H_

#include <cstdint>
#include <string>

namespace modelpool {

// "1.25 GiB", "512.00 MiB": bytes for messages.
std::string FormatBytes(int64_t bytes);

}  // namespace modelpool

#endif  // MODELPOOL_BASE_BYTES_H_
