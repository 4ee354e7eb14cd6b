#include "lib/models/kernel_switches.h"

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modelpool/base/logging.h"

namespace modelpool {
namespace {

// Reads the switches from `env`, with the warnings logged meanwhile.
struct Read {
  KernelSwitches switches;
  std::vector<std::string> warnings;
};

Read ReadFrom(const std::map<std::string, std::string>& env) {
  Read read;
  SetLogSink([&read](LogSeverity severity, absl::string_view message) {
    if (severity == LogSeverity::kWarning) read.warnings.emplace_back(message);
  });
  read.switches = ReadKernelSwitches([&env](const std::string& name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  SetLogSink(nullptr);
  return read;
}

TEST_CASE("Kernel switches default to every kernel on, and our packed attention for BERT") {
  const Read read = ReadFrom({});
  CHECK(read.switches.fused_kernels);
  CHECK(read.switches.bert_attention == BertAttention::kPacked);
  CHECK(read.switches.decoder_kernels);
  CHECK(read.switches.overlapped_launches);
  CHECK(read.warnings.empty());
}

TEST_CASE("Kernel switches take the documented words, in any case") {
  for (const std::string off : {"0", "false", "OFF", " no "}) {
    INFO(off);
    CHECK_FALSE(ReadFrom({{"MODELPOOL_FUSED_KERNELS", off}}).switches.fused_kernels);
  }
  CHECK(ReadFrom({{"MODELPOOL_FUSED_KERNELS", "on"}}).switches.fused_kernels);
  CHECK(ReadFrom({{"MODELPOOL_BERT_ATTENTION", "Efficient"}}).switches.bert_attention ==
        BertAttention::kEfficient);
  CHECK(ReadFrom({{"MODELPOOL_BERT_ATTENTION", "flash"}}).switches.bert_attention ==
        BertAttention::kFlash);
  CHECK(ReadFrom({{"MODELPOOL_BERT_ATTENTION", " PACKED"}}).switches.bert_attention ==
        BertAttention::kPacked);
  CHECK_FALSE(ReadFrom({{"MODELPOOL_DECODER_ATTENTION", "matmul"}}).switches.decoder_kernels);
  CHECK(ReadFrom({{"MODELPOOL_DECODER_ATTENTION", "kernels"}}).switches.decoder_kernels);
  CHECK_FALSE(ReadFrom({{"MODELPOOL_OVERLAPPED_LAUNCHES", "Off"}}).switches.overlapped_launches);
  CHECK(ReadFrom({{"MODELPOOL_OVERLAPPED_LAUNCHES", "1"}}).switches.overlapped_launches);
}

TEST_CASE("An overlapped-launch switch it cannot read keeps launches overlapped and says so") {
  const Read read = ReadFrom({{"MODELPOOL_OVERLAPPED_LAUNCHES", "sometimes"}});
  CHECK(read.switches.overlapped_launches);
  CHECK(read.switches.fused_kernels);
  REQUIRE(read.warnings.size() == 1);
  CHECK(read.warnings[0].find("MODELPOOL_OVERLAPPED_LAUNCHES='sometimes'") != std::string::npos);
  CHECK(read.warnings[0].find("keeping the default, on") != std::string::npos);
}

TEST_CASE("An absurdly long overlapped-launch switch keeps launches overlapped, warning briefly") {
  const Read read = ReadFrom({{"MODELPOOL_OVERLAPPED_LAUNCHES", "0" + std::string(1 << 20, ' ')}});
  CHECK(read.switches.overlapped_launches);
  REQUIRE(read.warnings.size() == 1);
  CHECK(read.warnings[0].size() < 300);
  CHECK(read.warnings[0].find("MODELPOOL_OVERLAPPED_LAUNCHES") != std::string::npos);
}

TEST_CASE("A kernel switch it cannot read keeps its default and says so, naming the variable") {
  const Read read = ReadFrom({{"MODELPOOL_FUSED_KERNELS", "maybe"},
                              {"MODELPOOL_BERT_ATTENTION", "cudnn"},
                              {"MODELPOOL_DECODER_ATTENTION", "matmull"}});
  CHECK(read.switches.fused_kernels);
  CHECK(read.switches.bert_attention == BertAttention::kPacked);
  CHECK(read.switches.decoder_kernels);
  REQUIRE(read.warnings.size() == 3);
  CHECK(read.warnings[0].find("MODELPOOL_FUSED_KERNELS='maybe'") != std::string::npos);
  CHECK(read.warnings[1].find("MODELPOOL_BERT_ATTENTION='cudnn'") != std::string::npos);
  CHECK(read.warnings[1].find("packed, flash or efficient") != std::string::npos);
  CHECK(read.warnings[1].find("keeping the default, packed") != std::string::npos);
  CHECK(read.warnings[2].find("MODELPOOL_DECODER_ATTENTION='matmull'") != std::string::npos);
  CHECK(read.warnings[2].find("keeping the default, kernels") != std::string::npos);
}

TEST_CASE("An absurdly long kernel switch is unreadable, and its warning stays short") {
  const std::string huge(1 << 20, 'x');
  const std::string off_padded = "off" + std::string(1 << 20, ' ');
  const Read read =
      ReadFrom({{"MODELPOOL_FUSED_KERNELS", off_padded}, {"MODELPOOL_DECODER_ATTENTION", huge}});
  CHECK(read.switches.fused_kernels);
  CHECK(read.switches.decoder_kernels);
  REQUIRE(read.warnings.size() == 2);
  for (const std::string& warning : read.warnings) {
    CHECK(warning.size() < 300);
    CHECK(warning.find("...'") != std::string::npos);
  }
}

}  // namespace
}  // namespace modelpool
