#include "modelpool/base/model_folder.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tests/testing/status.h"
#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

const std::string kMain = "0123456789abcdef0123456789abcdef01234567";
const std::string kOld = "fedcba9876543210fedcba9876543210fedcba98";

Settings::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

using testing::Mentions;

// A Hugging Face cache as huggingface_hub leaves it: models--acme--tiny-bert with refs/main and
// refs/v1 (a tag) on two snapshots whose files link to blobs.
fs::path MakeCache(const std::string& name) {
  const fs::path hub = testing::TempDir("model_folder_test_" + name);
  const fs::path repo = hub / "models--acme--tiny-bert";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "blobs" / "aaaa") << "{}";
  for (const std::string& commit : {kMain, kOld}) {
    fs::create_directories(repo / "snapshots" / commit);
    fs::create_symlink("../../blobs/aaaa", repo / "snapshots" / commit / "config.json");
  }
  std::ofstream(repo / "refs" / "main") << kMain;  // no newline, as huggingface_hub writes it
  std::ofstream(repo / "refs" / "v1") << kOld << "\n";
  return hub;
}

TEST_CASE("FindModelFolder takes an existing path as it is, labelled by its last component") {
  const fs::path dir = testing::TempDir("model_folder_test_path");
  absl::StatusOr<ModelFolder> folder = FindModelFolder(dir.string() + "/", Env({}));
  REQUIRE(folder.ok());
  CHECK(folder->path == dir.string() + "/");
  CHECK(folder->name == dir.string() + "/");
  CHECK(folder->label() == dir.filename().string());
}

TEST_CASE("FindModelFolder finds org/name at main in HF_HUB_CACHE, named by its id") {
  const fs::path hub = MakeCache("main");
  absl::StatusOr<ModelFolder> folder =
      FindModelFolder("acme/tiny-bert", Env({{"HF_HUB_CACHE", hub.string()}}));
  REQUIRE(folder.ok());
  CHECK(folder->path == (hub / "models--acme--tiny-bert/snapshots" / kMain).string());
  CHECK(folder->name == "acme/tiny-bert");
  CHECK(folder->label() == "acme/tiny-bert");
  CHECK(fs::exists(fs::path(folder->path) / "config.json"));
}

TEST_CASE("FindModelFolder follows a tag, or takes a commit hash directly") {
  const fs::path hub = MakeCache("revision");
  const auto env = Env({{"HF_HUB_CACHE", hub.string()}});
  absl::StatusOr<ModelFolder> tag = FindModelFolder("acme/tiny-bert@v1", env);
  REQUIRE(tag.ok());
  CHECK(tag->path == (hub / "models--acme--tiny-bert/snapshots" / kOld).string());
  CHECK(tag->name == "acme/tiny-bert@v1");
  absl::StatusOr<ModelFolder> commit = FindModelFolder("acme/tiny-bert@" + kMain, env);
  REQUIRE(commit.ok());
  CHECK(commit->path == (hub / "models--acme--tiny-bert/snapshots" / kMain).string());
}

TEST_CASE("FindModelFolder looks in HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache") {
  const fs::path root = testing::TempDir("model_folder_test_homes");
  const fs::path hub = MakeCache("homes");
  fs::create_directories(root / "hf");
  fs::create_directory_symlink(hub, root / "hf" / "hub");
  fs::create_directories(root / "xdg" / "huggingface");
  fs::create_directory_symlink(hub, root / "xdg" / "huggingface" / "hub");
  fs::create_directories(root / "home" / ".cache" / "huggingface");
  fs::create_directory_symlink(hub, root / "home" / ".cache" / "huggingface" / "hub");
  const std::string snapshot = "models--acme--tiny-bert/snapshots/" + kMain;
  CHECK(FindModelFolder("acme/tiny-bert", Env({{"HF_HOME", (root / "hf").string()}}))->path ==
        (root / "hf" / "hub" / snapshot).string());
  CHECK(FindModelFolder("acme/tiny-bert", Env({{"XDG_CACHE_HOME", (root / "xdg").string()},
                                               {"HOME", (root / "home").string()}}))
            ->path == (root / "xdg" / "huggingface" / "hub" / snapshot).string());
  CHECK(FindModelFolder("acme/tiny-bert", Env({{"HOME", (root / "home").string()}}))->path ==
        (root / "home" / ".cache" / "huggingface" / "hub" / snapshot).string());
  CHECK(FindModelFolder("acme/tiny-bert", Env({{"HF_HOME", "~/hf"}, {"HOME", root.string()}}))
            ->path == (root / "hf" / "hub" / snapshot).string());
}

TEST_CASE("A model missing from the cache is NotFound, saying where it looked") {
  const fs::path hub = MakeCache("missing");
  const auto env = Env({{"HF_HUB_CACHE", hub.string()}});
  absl::StatusOr<ModelFolder> missing = FindModelFolder("acme/other-model", env);
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(missing.status(),
                 "there is no folder acme/other-model, and model acme/other-model is not in the "
                 "Hugging Face cache"));
  CHECK(Mentions(missing.status(), (hub / "models--acme--other-model").string()));
  CHECK(Mentions(missing.status(), "HF_HUB_CACHE"));
  absl::StatusOr<ModelFolder> branch = FindModelFolder("acme/tiny-bert@dev", env);
  CHECK(branch.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(branch.status(), "revision dev"));
  CHECK(Mentions(branch.status(), (hub / "models--acme--tiny-bert/refs/dev").string()));
}

TEST_CASE("A ref to a snapshot that is not there is NotFound, naming both") {
  const fs::path hub = MakeCache("no_snapshot");
  const std::string gone = "1111111111111111111111111111111111111111";
  std::ofstream(hub / "models--acme--tiny-bert/refs/main", std::ios::trunc) << gone;
  absl::StatusOr<ModelFolder> folder =
      FindModelFolder("acme/tiny-bert", Env({{"HF_HUB_CACHE", hub.string()}}));
  CHECK(folder.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(folder.status(), "commit " + gone));
  CHECK(Mentions(folder.status(), "snapshots/" + gone));
}

TEST_CASE("A ref that does not hold a commit hash cannot lead out of the cache") {
  const fs::path hub = MakeCache("bad_ref");
  std::ofstream(hub / "models--acme--tiny-bert/refs/main", std::ios::trunc) << "../../../etc";
  absl::StatusOr<ModelFolder> folder =
      FindModelFolder("acme/tiny-bert", Env({{"HF_HUB_CACHE", hub.string()}}));
  CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(folder.status(), "refs/main holds '../../../etc', not a commit hash"));
}

TEST_CASE("Ids that huggingface_hub would not write are paths; such revisions are refused") {
  const auto env = Env({{"HF_HUB_CACHE", MakeCache("bad_ids").string()}});
  // Not ids: taken as the paths they are, never looked up in the cache.
  for (const char* id : {"../secret", "acme/../x", "acme", "a/b/c", "acme/-x", "acme/a--b"}) {
    absl::StatusOr<ModelFolder> folder = FindModelFolder(id, env);
    REQUIRE(folder.ok());
    CHECK(folder->path == id);
    CHECK(folder->name == id);
  }
  for (const char* id : {"acme/tiny-bert@../../x", "acme/tiny-bert@/etc", "acme/tiny-bert@"}) {
    absl::StatusOr<ModelFolder> folder = FindModelFolder(id, env);
    CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(folder.status(), "is not a revision"));
  }
  CHECK(FindModelFolder("", env).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Without any cache variable the error says which variables it tried") {
  absl::StatusOr<ModelFolder> folder = FindModelFolder("acme/tiny-bert", Env({}));
  CHECK(folder.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(folder.status(), "HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME"));
}

TEST_CASE("NameModelIn replaces the snapshot folder with the model's name") {
  const ModelFolder folder{"/cache/models--acme--x/snapshots/" + kMain, "acme/x"};
  const absl::Status named = NameModelIn(
      absl::InvalidArgumentError(folder.path + "/config.json: hidden_size is \"x\""), folder);
  CHECK(named.code() == absl::StatusCode::kInvalidArgument);
  CHECK(named.message() == "acme/x/config.json: hidden_size is \"x\"");
  CHECK(NameModelIn(absl::OkStatus(), folder).ok());
}

}  // namespace
}  // namespace modelpool
