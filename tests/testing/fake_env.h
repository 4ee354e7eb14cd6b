#ifndef MODELPOOL_TESTS_TESTING_FAKE_ENV_H_
#define MODELPOOL_TESTS_TESTING_FAKE_ENV_H_

#include <map>
#include <optional>
#include <string>

#include "modelpool/base/settings.h"

namespace modelpool::testing {

// An environment that holds `vars` and nothing else, for `*Settings::FromEnv()`.
inline Settings::EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_FAKE_ENV_H_
