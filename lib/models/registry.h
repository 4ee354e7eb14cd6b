#ifndef MODELPOOL_LIB_MODELS_REGISTRY_H_
#define MODELPOOL_LIB_MODELS_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/models/encoder.h"
#include "lib/models/formats/json_file.h"
#include "lib/models/summarizer_folder.h"

namespace modelpool {

// ReadEncoderArchitecture()
//
// The encoder that `config` (a Transformer folder's `config.json`) describes, chosen by its
// `model_type` ("bert" when absent, as older BERT folders are). `InvalidArgument` naming the
// file for a `model_type` with no encoder here, listing those there are.
absl::StatusOr<std::unique_ptr<EncoderArchitecture>> ReadEncoderArchitecture(
    const JsonFile& config);

// OpenSummarizerFolder()
//
// The encoder-decoder folder `model_dir`, read by the architecture its `config.json` names in
// `model_type`, with its tokenizer. `NotFound` for a missing file, `InvalidArgument` naming the
// file for a `model_type` with no summarizer here (listing those there are) or a bad value.
// `name` is what messages call the model (the folder's last component when empty).
absl::StatusOr<std::shared_ptr<const SummarizerFolder>> OpenSummarizerFolder(
    const std::string& model_dir, const std::string& name = "");

// The `model_type`s each task has an architecture for, for messages and docs.
std::vector<std::string> EncoderModelTypes();
std::vector<std::string> SummarizerModelTypes();

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_REGISTRY_H_
