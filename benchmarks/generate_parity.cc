// How often are our generated ids those of transformers, in the same dtype on the same GPU?
// Any encoder-decoder folder (T5, BART): the architecture is the folder's, and so is every
// setting the reference did not pass to generate().
//
//   python3 tools/reference_generate_ids.py MODEL_DIR CORPUS_TXT /tmp/ref.json --dtype bfloat16
//   generate_parity --model MODEL_DIR --reference /tmp/ref.json --dtype bfloat16
//
// For every case the reference recorded (its inputs, generate() options and output ids), prints
// the share of texts whose ids are identical, and the share of generated positions that agree
// before a text's first difference (one early difference sends the rest of a text elsewhere).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "benchmarks/flags.h"
#include "modelpool/managers/summarization_model_manager.h"
#include "nlohmann/json.hpp"

namespace modelpool {
namespace {

using Rows = std::vector<std::vector<int32_t>>;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "generate_parity: %s\n", std::string(status.ToString()).c_str());
  return 1;
}

// transformers' row without the decoder start token, cut after the first end-of-sequence id.
std::vector<int32_t> Generated(const std::vector<int32_t>& sequence, int32_t eos) {
  std::vector<int32_t> ids(sequence.begin() + 1, sequence.end());
  const auto end = std::find(ids.begin(), ids.end(), eos);
  if (end != ids.end()) ids.erase(end + 1, ids.end());
  return ids;
}

int Run(const std::string& model, const std::string& reference, DType dtype, Device device) {
  std::ifstream in(reference);
  if (!in) return Fail(absl::NotFoundError("cannot read " + reference));
  const nlohmann::json ref = nlohmann::json::parse(in);
  const Rows inputs = ref.at("inputs").get<Rows>();
  int max_input = 1, max_new = 1, max_beams = 1;
  for (const auto& row : inputs) max_input = std::max(max_input, static_cast<int>(row.size()));
  for (const nlohmann::json& c : ref.at("cases")) {
    max_new = std::max(max_new, c.at("options").at("max_new_tokens").get<int>());
    max_beams = std::max(max_beams, c.at("options").value("num_beams", 1));
  }
  Settings settings;
  if (device.is_cuda()) settings.devices = {device};
  settings.force_cpu = !device.is_cuda();
  settings.max_instances = 1;
  auto manager = SummarizationModelManager::Create({.model_dir = model,
                                                    .dtype = dtype,
                                                    .max_batch_size = 32,
                                                    .max_num_beams = max_beams,
                                                    .max_input_tokens = max_input,
                                                    .max_new_tokens = max_new,
                                                    .settings = settings});
  if (!manager.ok()) return Fail(manager.status());
  auto lease = (*manager)->Acquire(absl::Minutes(10));
  if (!lease.ok()) return Fail(lease.status());
  const int32_t eos = ref.value("eos_token_id", 1);
  for (const nlohmann::json& c : ref.at("cases")) {
    const nlohmann::json& o = c.at("options");
    GenerationOptions options;
    options.max_new_tokens = o.at("max_new_tokens").get<int>();
    options.num_beams = o.value("num_beams", 1);
    if (o.contains("min_new_tokens")) options.min_new_tokens = o["min_new_tokens"].get<int>();
    if (o.contains("no_repeat_ngram_size")) {
      options.no_repeat_ngram_size = o["no_repeat_ngram_size"].get<int>();
    }
    if (o.contains("length_penalty")) options.length_penalty = o["length_penalty"].get<double>();
    auto ids = (*lease)->Generate(inputs, options);
    if (!ids.ok()) return Fail(ids.status());
    const Rows expected = c.at("sequences").get<Rows>();
    size_t identical = 0, agreeing = 0, positions = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      const std::vector<int32_t> want = Generated(expected[i], eos);
      const std::vector<int32_t>& got = (*ids)[i];
      identical += got == want;
      positions += want.size();
      for (size_t t = 0; t < std::min(want.size(), got.size()) && got[t] == want[t]; ++t) {
        ++agreeing;
      }
    }
    std::printf(
        "{\"what\": \"parity\", \"case\": \"%s\", \"dtype\": \"%s\", \"device\": \"%s\", "
        "\"texts\": %zu, \"identical_texts\": %zu, \"identical_share\": %.4f, "
        "\"positions\": %zu, \"agreeing_positions\": %zu, \"agreeing_share\": %.4f}\n",
        c.at("name").get<std::string>().c_str(), std::string(DTypeName(dtype)).c_str(),
        device.ToString().c_str(), expected.size(), identical,
        static_cast<double>(identical) / static_cast<double>(expected.size()), positions, agreeing,
        positions == 0 ? 1.0 : static_cast<double>(agreeing) / positions);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) {
  modelpool::bench::Flags flags(
      argc, argv,
      "--model DIR --reference REF_JSON [--dtype bfloat16|float32] [--device cuda:0|cpu]");
  const std::string model = flags.Required("--model");
  const std::string reference = flags.Required("--reference");
  const modelpool::DType dtype = flags.Dtype("--dtype", modelpool::DType::kBFloat16);
  const modelpool::Device device = flags.GetDevice("--device", modelpool::Device::Cuda(0));
  flags.CheckAllKnown();
  return modelpool::Run(model, reference, dtype, device);
}
