#ifndef MODELPOOL_BASE_MODEL_FOLDER_H_
#define MODELPOOL_BASE_MODEL_FOLDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/settings.h"

namespace modelpool {

// ModelFolder
//
// Where a model's files are, and what messages call the model.
struct ModelFolder {
  // The folder to read the files from.
  std::string path;
  // "org/name" (with "@revision" when one was asked for) for a model found by its Hugging
  // Face id; otherwise the path as it was given.
  std::string name;

  // What messages call the model: `name` for a model found by its id, else the folder's last
  // component ("/models/t5-small/" -> "t5-small").
  std::string label() const;
};

// FindModelFolder()
//
// Finds the model that `model` names, offline. A path to an existing file or folder is taken
// as it is, and so is anything that cannot be a Hugging Face id (reading it then says what is
// missing). Otherwise `model` is a Hugging Face id, `org/name` with an optional `@revision` (a
// branch, a tag or a commit hash; `main` when absent), and the model is the
// snapshot of that revision in the local Hugging Face cache, laid out as `huggingface_hub`
// leaves it: `models--org--name/refs/<revision>` holds a commit hash and
// `models--org--name/snapshots/<commit>/` the files. The cache is `HF_HUB_CACHE`, else
// `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`; the
// variables come from `env` (the process environment when null). Nothing is downloaded.
//
// `NotFound` for an id found neither as a folder nor in the cache, naming the places it
// looked; `InvalidArgument` for a revision that `huggingface_hub` would not write, or a ref
// whose content is not a commit hash.
absl::StatusOr<ModelFolder> FindModelFolder(absl::string_view model,
                                            const Settings::EnvLookup& env = nullptr);

// `status` with every mention of `folder.path` in its message replaced by `folder.name`, so
// that an error about a file in the cache names the model rather than a snapshot hash:
// "org/name/config.json: hidden_size is ...". OK stays OK.
absl::Status NameModelIn(const absl::Status& status, const ModelFolder& folder);

}  // namespace modelpool

#endif  // MODELPOOL_BASE_MODEL_FOLDER_H_
