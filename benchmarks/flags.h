#ifndef MODELPOOL_BENCHMARKS_FLAGS_H_
#define MODELPOOL_BENCHMARKS_FLAGS_H_

// The command lines of the benchmark binaries, `--name value` pairs, read and checked before
// anything runs: a typo stops a benchmark before it has spent minutes of GPU time.

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"

namespace modelpool::bench {

class Flags {
 public:
  // `usage` lists the flags; it is printed under the error on any mistake.
  Flags(int argc, char** argv, std::string usage)
      : program_(argc > 0 ? Basename(argv[0]) : "benchmark"), usage_(std::move(usage)) {
    for (int i = 1; i < argc; i += 2) {
      const std::string name = argv[i];
      if (name.rfind("--", 0) != 0) Usage("expected a --flag, got '" + name + "'");
      if (i + 1 >= argc) Usage(name + " needs a value");
      if (!values_.emplace(name, argv[i + 1]).second) Usage(name + " is given twice");
    }
  }

  std::string String(const std::string& name, std::string fallback = "") {
    const std::string* value = Find(name);
    return value != nullptr ? *value : fallback;
  }
  std::string Required(const std::string& name) {
    const std::string* value = Find(name);
    if (value == nullptr || value->empty()) Usage(name + " is needed");
    return *value;
  }
  // A whole number of at least `min`.
  int64_t Int(const std::string& name, int64_t fallback, int64_t min = 1) {
    const std::string* value = Find(name);
    if (value == nullptr) return fallback;
    int64_t number = 0;
    if (!absl::SimpleAtoi(*value, &number) || number < min) {
      Usage(absl::StrFormat("%s takes a whole number of at least %d, not '%s'", name, min, *value));
    }
    return number;
  }
  // A number of at least `min`.
  double Double(const std::string& name, double fallback, double min) {
    const std::string* value = Find(name);
    if (value == nullptr) return fallback;
    double number = 0;
    if (!absl::SimpleAtod(*value, &number) || !(number >= min)) {
      Usage(absl::StrFormat("%s takes a number of at least %g, not '%s'", name, min, *value));
    }
    return number;
  }
  DType Dtype(const std::string& name, DType fallback) {
    const std::string* value = Find(name);
    if (value == nullptr) return fallback;
    absl::StatusOr<DType> dtype = ParseDType(*value);
    if (!dtype.ok()) Usage(std::string(dtype.status().message()));
    return *dtype;
  }
  Device GetDevice(const std::string& name, Device fallback) {
    const std::string* value = Find(name);
    if (value == nullptr) return fallback;
    absl::StatusOr<Device> device = Device::Parse(*value);
    if (!device.ok()) Usage(std::string(device.status().message()));
    return *device;
  }

  // Call after reading every flag: one that nothing asked for is a mistake.
  void CheckAllKnown() const {
    for (const auto& [name, value] : values_) {
      if (!asked_.contains(name)) Usage("unknown flag " + name);
    }
  }

  [[noreturn]] void Usage(const std::string& message) const {
    absl::FPrintF(stderr, "%s: %s\nusage: %s %s\n", program_, message, program_, usage_);
    std::exit(2);
  }
  [[noreturn]] void Fail(const absl::Status& status) const {
    absl::FPrintF(stderr, "%s: %s\n", program_, status.ToString());
    std::exit(1);
  }

  // The non-empty lines of `path`: a corpus, one document a line.
  std::vector<std::string> ReadLines(const std::string& path) const {
    std::ifstream in(path);
    if (!in) Fail(absl::NotFoundError("cannot read " + path));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(std::move(line));
    }
    return lines;
  }

 private:
  static std::string Basename(const std::string& path) {
    return path.substr(path.find_last_of('/') + 1);
  }
  const std::string* Find(const std::string& name) {
    asked_.insert(name);
    const auto it = values_.find(name);
    return it != values_.end() ? &it->second : nullptr;
  }

  std::string program_, usage_;
  std::map<std::string, std::string> values_;
  std::set<std::string> asked_;
};

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_FLAGS_H_
