#ifndef MODELPOOL_LIB_TEXT_SENTENCEPIECE_MODEL_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_SENTENCEPIECE_MODEL_INTERNAL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace modelpool::text_internal {

// What a SentencePiece `ModelProto` (sentencepiece_model.proto) says that encoding and
// decoding use; every other field is skipped.
struct SentencePieceModel {
  // ModelProto.SentencePiece.Type.
  enum PieceType {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };
  // TrainerSpec.ModelType.
  enum ModelType { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

  struct Piece {
    std::string piece;
    float score = 0;
    int type = kNormal;
  };
  std::vector<Piece> pieces;  // field 1

  // TrainerSpec (field 2).
  int model_type = kUnigram;                   // 3
  bool treat_whitespace_as_suffix = false;     // 24
  bool byte_fallback = false;                  // 35
  std::string unk_surface = " \xE2\x81\x87 ";  // 44
  std::string unk_piece = "<unk>";             // 45
  std::string bos_piece = "<s>";               // 46
  std::string eos_piece = "</s>";              // 47
  std::string pad_piece = "<pad>";             // 48

  // NormalizerSpec (field 3).
  std::string precompiled_charsmap;      // 2
  bool add_dummy_prefix = true;          // 3
  bool remove_extra_whitespaces = true;  // 4
  bool escape_whitespaces = true;        // 5

  // A denormalizer_spec (field 5) with rules of its own.
  bool has_denormalizer = false;
};

// Parses the protobuf wire format of a `ModelProto`; `InvalidArgument` (without a file name)
// when it is malformed.
absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes);

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_SENTENCEPIECE_MODEL_INTERNAL_H_
