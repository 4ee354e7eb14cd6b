// See Note [Why sentencepiece sits behind an adapter]: no Abseil header may be included here.
#include "tests/text/sentencepiece_library.h"

#include <sentencepiece_processor.h>

namespace modelpool::testing {
namespace {

class Library : public SentencePieceLibrary {
 public:
  std::vector<int> Encode(const std::string& text) const override {
    return processor_.EncodeAsIds(text);
  }
  std::string Decode(const std::vector<int>& ids) const override {
    return processor_.DecodeIds(ids);
  }
  bool IsControl(int id) const override { return processor_.IsControl(id); }
  bool IsUnknown(int id) const override { return processor_.IsUnknown(id); }
  int eos_id() const override { return processor_.eos_id(); }

  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

std::unique_ptr<SentencePieceLibrary> SentencePieceLibrary::Load(const std::string& path,
                                                                 std::string* error) {
  auto library = std::make_unique<Library>();
  const auto status = library->processor_.Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return library;
}

}  // namespace modelpool::testing
