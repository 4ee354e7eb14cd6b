#include "lib/models/registry.h"

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/models/bart/bart_folder.h"
#include "lib/models/bert/bert_encoder.h"
#include "lib/models/roberta/roberta_encoder.h"
#include "lib/models/t5/t5_folder.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

using EncoderReader = absl::StatusOr<std::unique_ptr<EncoderArchitecture>> (*)(const JsonFile&);
using SummarizerOpener = absl::StatusOr<std::shared_ptr<const SummarizerFolder>> (*)(
    const std::string& model_dir, const std::string& name);

// Note [Architectures by model_type]
// Every architecture the SDK implements, keyed by the `model_type` of its config.json, as
// transformers' auto classes key theirs. Adding one is a folder under lib/models and one line
// here; the managers never name an architecture.
struct Architectures {
  std::vector<std::pair<std::string, EncoderReader>> encoders = {
      {"bert", &BertArchitecture::Read},
      {"roberta", &ReadRobertaArchitecture},
      {"xlm-roberta", &ReadRobertaArchitecture},
  };
  std::vector<std::pair<std::string, SummarizerOpener>> summarizers = {
      {"bart", &BartFolder::Open},
      {"t5", &T5Folder::Open},
      {"mt5", &T5Folder::Open},
  };
};

const Architectures& Registered() {
  static const Architectures* const kArchitectures = new Architectures();
  return *kArchitectures;
}

template <typename Entry>
std::vector<std::string> Names(const std::vector<Entry>& entries) {
  std::vector<std::string> names;
  for (const auto& [name, fn] : entries) names.push_back(name);
  return names;
}

absl::Status Unsupported(const JsonFile& config, const std::string& model_type, const char* task,
                         const std::vector<std::string>& supported) {
  return absl::InvalidArgumentError(
      absl::StrCat(config.path(), ": model_type '", model_type, "' is not supported for ", task,
                   " (supported: ", absl::StrJoin(supported, ", "), ")"));
}

}  // namespace

std::vector<std::string> EncoderModelTypes() { return Names(Registered().encoders); }
std::vector<std::string> SummarizerModelTypes() { return Names(Registered().summarizers); }

absl::StatusOr<std::unique_ptr<EncoderArchitecture>> ReadEncoderArchitecture(
    const JsonFile& config) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string model_type, config.String("model_type", "bert"));
  for (const auto& [name, read] : Registered().encoders) {
    if (name == model_type) return read(config);
  }
  return Unsupported(config, model_type, "embeddings", EncoderModelTypes());
}

absl::StatusOr<std::shared_ptr<const SummarizerFolder>> OpenSummarizerFolder(
    const std::string& model_dir, const std::string& name) {
  MODELPOOL_ASSIGN_OR_RETURN(
      const JsonFile config,
      JsonFile::Read((std::filesystem::path(model_dir) / "config.json").string()));
  MODELPOOL_ASSIGN_OR_RETURN(const std::string model_type, config.String("model_type"));
  for (const auto& [type, open] : Registered().summarizers) {
    if (type == model_type) return open(model_dir, name);
  }
  return Unsupported(config, model_type, "summarization", SummarizerModelTypes());
}

}  // namespace modelpool
