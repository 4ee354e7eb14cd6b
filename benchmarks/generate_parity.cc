// How often are our generated ids those of transformers, in the same dtype on the same GPU?
// Any encoder-decoder folder (T5, BART): the architecture is the folder's, and so is every
// setting the reference did not pass to generate().
//
//   python3 tools/reference_generate_ids.py MODEL_DIR CORPUS_TXT /tmp/ref.json --dtype bfloat16
//   generate_parity --model MODEL_DIR --reference /tmp/ref.json --dtype bfloat16
//                   [--texts-per-call N]
//
// For every case the reference recorded (its inputs, generate() options and output ids), prints
// the share of texts whose ids are identical, and the share of generated positions that agree
// before a text's first difference (one early difference sends the rest of a text elsewhere).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "benchmarks/parity_reference.h"
#include "examples/common/command_line.h"
#include "modelpool/managers/summarization_model_manager.h"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, reference, "", "the reference of tools/t5_reference_ids.py");
ABSL_FLAG(std::string, dtype, "bfloat16", "bfloat16 or float32");
ABSL_FLAG(std::string, device, "cuda:0", "cpu or cuda:N");
ABSL_FLAG(int64_t, texts_per_call, 0,
          "texts a Generate call takes (1: one at a time, as a decoder step of one row); 0: all");

namespace modelpool {
namespace {

using Rows = bench::TokenRows;

// transformers' row without the decoder start token, cut after the first end-of-sequence id.
std::vector<int32_t> Generated(const std::vector<int32_t>& sequence, int32_t eos) {
  std::vector<int32_t> ids(sequence.begin() + 1, sequence.end());
  const auto end = std::find(ids.begin(), ids.end(), eos);
  if (end != ids.end()) ids.erase(end + 1, ids.end());
  return ids;
}

int Run(const std::string& model, const std::string& reference_path, DType dtype, Device device,
        size_t texts_per_call) {
  absl::StatusOr<bench::ParityReference> reference = bench::ReadParityReference(reference_path);
  if (!reference.ok()) cli::Fail(reference.status());
  const Rows& inputs = reference->inputs;
  int max_input = 1, max_new = 1, max_beams = 1;
  for (const auto& row : inputs) max_input = std::max(max_input, static_cast<int>(row.size()));
  for (const bench::ParityCase& c : reference->cases) {
    max_new = std::max(max_new, c.max_new_tokens);
    max_beams = std::max(max_beams, c.num_beams);
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
  if (!manager.ok()) cli::Fail(manager.status());
  auto lease = (*manager)->Acquire(absl::Minutes(10));
  if (!lease.ok()) cli::Fail(lease.status());
  const int32_t eos = reference->eos_token_id;
  for (const bench::ParityCase& c : reference->cases) {
    GenerationOptions options;
    options.max_new_tokens = c.max_new_tokens;
    options.num_beams = c.num_beams;
    options.min_new_tokens = c.min_new_tokens;
    options.no_repeat_ngram_size = c.no_repeat_ngram_size;
    options.length_penalty = c.length_penalty;
    Rows ids;
    const size_t step = texts_per_call == 0 ? inputs.size() : texts_per_call;
    for (size_t first = 0; first < inputs.size(); first += step) {
      const Rows part(inputs.begin() + first,
                      inputs.begin() + std::min(inputs.size(), first + step));
      auto got = (*lease)->Generate(part, options);
      if (!got.ok()) cli::Fail(got.status());
      ids.insert(ids.end(), got->begin(), got->end());
    }
    const Rows& expected = c.sequences;
    size_t identical = 0, agreeing = 0, positions = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      const std::vector<int32_t> want = Generated(expected[i], eos);
      const std::vector<int32_t>& got = ids[i];
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
        c.name.c_str(), std::string(DTypeName(dtype)).c_str(), device.ToString().c_str(),
        expected.size(), identical,
        static_cast<double>(identical) / static_cast<double>(expected.size()), positions, agreeing,
        positions == 0 ? 1.0 : static_cast<double>(agreeing) / positions);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(
      argc, argv,
      "generate_parity --model DIR --reference REF_JSON [--dtype bfloat16|float32] "
      "[--device cuda:0|cpu] [--texts-per-call N]");
  return modelpool::Run(
      modelpool::cli::Required(FLAGS_model), modelpool::cli::Required(FLAGS_reference),
      modelpool::cli::DTypeOf(FLAGS_dtype), modelpool::cli::DeviceOf(FLAGS_device),
      static_cast<size_t>(modelpool::cli::InRange(FLAGS_texts_per_call, 0, 4096)));
}
