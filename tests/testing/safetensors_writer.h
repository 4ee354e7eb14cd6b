#ifndef MODELPOOL_TESTS_TESTING_SAFETENSORS_WRITER_H_
#define MODELPOOL_TESTS_TESTING_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include "ATen/ATen.h"
#include "nlohmann/json.hpp"

namespace modelpool::testing {

// Writes `tensors` to a safetensors file at `path`, as float32.
inline void WriteSafetensors(const std::string& path,
                             const std::map<std::string, at::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor t = tensor.to(at::kFloat).contiguous();
    const size_t begin = data.size();
    data.append(static_cast<const char*>(t.data_ptr()), t.numel() * sizeof(float));
    header[name] = {
        {"dtype", "F32"}, {"shape", t.sizes().vec()}, {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t size = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(size >> (8 * i)));
  out << text << data;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_SAFETENSORS_WRITER_H_
