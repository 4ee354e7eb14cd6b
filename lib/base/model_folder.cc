#include "modelpool/base/model_folder.h"

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "lib/base/file.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

bool AllOf(absl::string_view text, absl::string_view extra) {
  for (const char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !absl::StrContains(extra, c)) {
      return false;
    }
  }
  return true;
}

// One half of `org/name`, as huggingface_hub accepts it.
bool IsIdPart(absl::string_view part) {
  return !part.empty() && part.size() <= 96 && AllOf(part, "_.-") && part.front() != '.' &&
         part.front() != '-' && !absl::StrContains(part, "--") && !absl::StrContains(part, "..");
}

// A branch, a tag or a commit: huggingface_hub keeps it as the file refs/<revision>, so it may
// hold slashes ("refs/pr/1") but must stay inside refs/.
bool IsRevision(absl::string_view revision) {
  return !revision.empty() && revision.size() <= 256 && AllOf(revision, "_.-/") &&
         revision.front() != '/' && revision.front() != '.' && revision.back() != '/' &&
         !absl::StrContains(revision, "//") && !absl::StrContains(revision, "..");
}

// Forty lowercase hexadecimal digits, as git prints a commit.
bool IsCommitHash(absl::string_view text) {
  if (text.size() != 40) return false;
  for (const char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

bool IsDirectory(const fs::path& path) {
  std::error_code error;
  return fs::is_directory(path, error);
}

// The cache folder, and which variable chose it (for messages).
struct HubCache {
  fs::path root;
  std::string chosen_by;
};

absl::StatusOr<HubCache> FindHubCache(const Settings::EnvLookup& env) {
  const auto get = [&](const char* name) -> std::optional<std::string> {
    std::optional<std::string> value = env(name);
    if (!value.has_value() || value->empty()) return std::nullopt;
    return value;
  };
  const std::optional<std::string> home = get("HOME");
  // huggingface_hub expands a leading ~ in its variables.
  const auto expand = [&](const std::string& path) -> fs::path {
    if (home.has_value() && (path == "~" || absl::StartsWith(path, "~/"))) {
      return fs::path(*home) / path.substr(std::min<size_t>(2, path.size()));
    }
    return fs::path(path);
  };
  if (auto v = get("HF_HUB_CACHE")) return HubCache{expand(*v), "HF_HUB_CACHE"};
  if (auto v = get("HF_HOME")) return HubCache{expand(*v) / "hub", "HF_HOME"};
  if (auto v = get("XDG_CACHE_HOME")) {
    return HubCache{expand(*v) / "huggingface" / "hub", "XDG_CACHE_HOME"};
  }
  if (home.has_value()) return HubCache{fs::path(*home) / ".cache/huggingface/hub", "HOME"};
  return absl::NotFoundError(
      "no Hugging Face cache: none of HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME is set");
}

// The commit that `revision` names in `repo`: its ref, or the revision itself when it is a
// commit hash with a snapshot.
absl::StatusOr<std::string> FindCommit(const fs::path& repo, const std::string& revision,
                                       const std::string& model, const HubCache& cache) {
  if (IsCommitHash(revision) && IsDirectory(repo / "snapshots" / revision)) return revision;
  const fs::path ref = repo / "refs" / revision;
  absl::StatusOr<std::string> content = ReadRegularFile(ref.string(), 1024);
  if (absl::IsNotFound(content.status())) {
    const std::string where = absl::StrCat(" (the cache is ", cache.root.string(), ", from ",
                                           cache.chosen_by, "; nothing is downloaded)");
    if (!IsDirectory(repo)) {
      return absl::NotFoundError(absl::StrCat("there is no folder ", model, ", and model ", model,
                                              " is not in the Hugging Face cache: ", repo.string(),
                                              " does not exist", where));
    }
    return absl::NotFoundError(absl::StrCat("model ", model, ": revision ", revision,
                                            " is not in the Hugging Face cache: ", ref.string(),
                                            " does not exist", where));
  }
  if (!content.ok()) return content.status();
  const std::string commit(absl::StripAsciiWhitespace(*content));
  if (!IsCommitHash(commit)) {
    return absl::InvalidArgumentError(
        absl::StrCat(ref.string(), " holds '", commit.substr(0, 64), "', not a commit hash"));
  }
  return commit;
}

}  // namespace

absl::StatusOr<ModelFolder> FindModelFolder(absl::string_view model,
                                            const Settings::EnvLookup& env) {
  if (model.empty()) return absl::InvalidArgumentError("no model given (a folder or org/name)");
  std::error_code error;
  if (fs::exists(fs::path(std::string(model)), error)) {
    return ModelFolder{std::string(model), std::string(model)};
  }
  const std::vector<absl::string_view> at = absl::StrSplit(model, absl::MaxSplits('@', 1));
  const std::vector<absl::string_view> parts = absl::StrSplit(at[0], '/');
  if (parts.size() != 2 || !IsIdPart(parts[0]) || !IsIdPart(parts[1])) {
    // A path, then: reading it says which file is missing.
    return ModelFolder{std::string(model), std::string(model)};
  }
  const std::string revision = at.size() == 2 ? std::string(at[1]) : "main";
  if (!IsRevision(revision)) {
    return absl::InvalidArgumentError(
        absl::StrCat(model, ": '", revision, "' is not a revision (a branch, tag or commit)"));
  }
  const auto process_env = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
  };
  MODELPOOL_ASSIGN_OR_RETURN(const HubCache cache,
                             FindHubCache(env ? env : Settings::EnvLookup(process_env)));
  const std::string name(model);
  const fs::path repo = cache.root / absl::StrCat("models--", parts[0], "--", parts[1]);
  MODELPOOL_ASSIGN_OR_RETURN(const std::string commit, FindCommit(repo, revision, name, cache));
  const fs::path snapshot = repo / "snapshots" / commit;
  if (!IsDirectory(snapshot)) {
    return absl::NotFoundError(absl::StrCat("model ", name, ": revision ", revision, " is commit ",
                                            commit, ", but ", snapshot.string(),
                                            " is not a folder"));
  }
  return ModelFolder{snapshot.string(), name};
}

std::string ModelFolder::label() const {
  if (name != path) return name;
  fs::path folder = fs::path(path).lexically_normal();
  if (!folder.has_filename()) folder = folder.parent_path();  // "/models/t5/"
  return folder.filename().string();
}

absl::Status NameModelIn(const absl::Status& status, const ModelFolder& folder) {
  if (status.ok() || folder.path == folder.name || folder.path.empty()) return status;
  return absl::Status(status.code(),
                      absl::StrReplaceAll(status.message(), {{folder.path, folder.name}}));
}

}  // namespace modelpool
