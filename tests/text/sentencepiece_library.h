#ifndef MODELPOOL_TESTS_TEXT_SENTENCEPIECE_LIBRARY_H_
#define MODELPOOL_TESTS_TEXT_SENTENCEPIECE_LIBRARY_H_

// The `sentencepiece` library behind a plain std:: interface.
//
// Note [Why sentencepiece sits behind an adapter]
// Debian's sentencepiece_processor.h (0.1.97) defines an `absl::string_view` of its own, which
// clashes with Abseil's; so only sentencepiece_library.cc, which includes no Abseil header,
// sees it. The differential test links this library and no libtorch: Debian's libtorch brings
// the full protobuf, and two protobufs in one process crash at start-up.

#include <memory>
#include <string>
#include <vector>

namespace modelpool::testing {

class SentencePieceLibrary {
 public:
  // nullptr and `*error` set when the model does not load.
  static std::unique_ptr<SentencePieceLibrary> Load(const std::string& path, std::string* error);
  virtual ~SentencePieceLibrary() = default;

  // The library's ids for valid UTF-8 `text`, without bos or eos.
  virtual std::vector<int> Encode(const std::string& text) const = 0;
  virtual std::string Decode(const std::vector<int>& ids) const = 0;
  virtual bool IsControl(int id) const = 0;
  virtual bool IsUnknown(int id) const = 0;
  virtual int eos_id() const = 0;
};

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TEXT_SENTENCEPIECE_LIBRARY_H_
