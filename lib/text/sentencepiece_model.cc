#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "lib/text/sentencepiece_model_internal.h"
#include "modelpool/base/status.h"

namespace modelpool::text_internal {
namespace {

// Protobuf wire types.
enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Reads the fields of one message; every read is bounds-checked.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }

  absl::Status Next(uint32_t* field, int* wire_type) {
    uint64_t key;
    MODELPOOL_RETURN_IF_ERROR(Varint(&key));
    *field = static_cast<uint32_t>(key >> 3);
    *wire_type = static_cast<int>(key & 7);
    if (*field == 0) return absl::InvalidArgumentError("field number 0");
    return absl::OkStatus();
  }

  absl::Status Varint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return absl::InvalidArgumentError("truncated varint");
      const auto byte = static_cast<unsigned char>(data_[pos_++]);
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return absl::OkStatus();
    }
    return absl::InvalidArgumentError("varint longer than 10 bytes");
  }

  absl::Status Bytes(std::string_view* value) {
    uint64_t length;
    MODELPOOL_RETURN_IF_ERROR(Varint(&length));
    if (length > data_.size() - pos_) return absl::InvalidArgumentError("truncated field");
    *value = data_.substr(pos_, length);
    pos_ += length;
    return absl::OkStatus();
  }

  absl::Status Fixed32(uint32_t* value) {
    if (data_.size() - pos_ < 4) return absl::InvalidArgumentError("truncated fixed32");
    unsigned char b[4];
    std::memcpy(b, data_.data() + pos_, 4);
    *value = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
    pos_ += 4;
    return absl::OkStatus();
  }

  absl::Status Skip(int wire_type) {
    uint64_t ignored;
    std::string_view bytes;
    uint32_t fixed;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        if (data_.size() - pos_ < 8) return absl::InvalidArgumentError("truncated fixed64");
        pos_ += 8;
        return absl::OkStatus();
      case kLengthDelimited:
        return Bytes(&bytes);
      case kFixed32:
        return Fixed32(&fixed);
      default:
        return absl::InvalidArgumentError("unsupported wire type " + std::to_string(wire_type));
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Reads a bool, enum or int field when its wire type fits, else skips it as protobuf does.
absl::Status ReadVarintField(WireReader& reader, int wire_type, uint64_t* value, bool* read) {
  *read = wire_type == kVarint;
  return *read ? reader.Varint(value) : reader.Skip(wire_type);
}

absl::Status ReadStringField(WireReader& reader, int wire_type, std::string* value) {
  if (wire_type != kLengthDelimited) return reader.Skip(wire_type);
  std::string_view bytes;
  MODELPOOL_RETURN_IF_ERROR(reader.Bytes(&bytes));
  value->assign(bytes);
  return absl::OkStatus();
}

absl::Status ParsePiece(std::string_view data, SentencePieceModel::Piece* piece) {
  WireReader reader(data);
  while (!reader.done()) {
    uint32_t field;
    int wire_type;
    MODELPOOL_RETURN_IF_ERROR(reader.Next(&field, &wire_type));
    if (field == 1) {
      MODELPOOL_RETURN_IF_ERROR(ReadStringField(reader, wire_type, &piece->piece));
    } else if (field == 2 && wire_type == kFixed32) {
      uint32_t bits = 0;
      MODELPOOL_RETURN_IF_ERROR(reader.Fixed32(&bits));
      std::memcpy(&piece->score, &bits, 4);
    } else if (field == 3) {
      uint64_t type;
      bool read;
      MODELPOOL_RETURN_IF_ERROR(ReadVarintField(reader, wire_type, &type, &read));
      if (read) piece->type = static_cast<int>(type);
    } else {
      MODELPOOL_RETURN_IF_ERROR(reader.Skip(wire_type));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTrainerSpec(std::string_view data, SentencePieceModel* model) {
  WireReader reader(data);
  while (!reader.done()) {
    uint32_t field;
    int wire_type;
    MODELPOOL_RETURN_IF_ERROR(reader.Next(&field, &wire_type));
    // unk_surface = 44, unk_piece = 45, bos_piece = 46, eos_piece = 47, pad_piece = 48.
    std::string* const strings[] = {&model->unk_surface, &model->unk_piece, &model->bos_piece,
                                    &model->eos_piece, &model->pad_piece};
    if (field >= 44 && field <= 48) {
      MODELPOOL_RETURN_IF_ERROR(ReadStringField(reader, wire_type, strings[field - 44]));
      continue;
    }
    if (field != 3 && field != 24 && field != 35) {
      MODELPOOL_RETURN_IF_ERROR(reader.Skip(wire_type));
      continue;
    }
    uint64_t value;
    bool read;
    MODELPOOL_RETURN_IF_ERROR(ReadVarintField(reader, wire_type, &value, &read));
    if (!read) continue;
    if (field == 3) model->model_type = static_cast<int>(value);
    if (field == 24) model->treat_whitespace_as_suffix = value != 0;
    if (field == 35) model->byte_fallback = value != 0;
  }
  return absl::OkStatus();
}

absl::Status ParseNormalizerSpec(std::string_view data, SentencePieceModel* model,
                                 bool denormalizer) {
  WireReader reader(data);
  while (!reader.done()) {
    uint32_t field;
    int wire_type;
    MODELPOOL_RETURN_IF_ERROR(reader.Next(&field, &wire_type));
    uint64_t value;
    bool read;
    if (field == 2) {
      std::string charsmap;
      MODELPOOL_RETURN_IF_ERROR(ReadStringField(reader, wire_type, &charsmap));
      if (denormalizer) {
        model->has_denormalizer = !charsmap.empty();
      } else {
        model->precompiled_charsmap = std::move(charsmap);
      }
    } else if (field >= 3 && field <= 5 && !denormalizer) {
      MODELPOOL_RETURN_IF_ERROR(ReadVarintField(reader, wire_type, &value, &read));
      if (!read) continue;
      bool* flag = field == 3   ? &model->add_dummy_prefix
                   : field == 4 ? &model->remove_extra_whitespaces
                                : &model->escape_whitespaces;
      *flag = value != 0;
    } else {
      MODELPOOL_RETURN_IF_ERROR(reader.Skip(wire_type));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes) {
  SentencePieceModel model;
  WireReader reader(bytes);
  while (!reader.done()) {
    uint32_t field;
    int wire_type;
    MODELPOOL_RETURN_IF_ERROR(reader.Next(&field, &wire_type));
    if (wire_type != kLengthDelimited || field < 1 || field > 5 || field == 4) {
      MODELPOOL_RETURN_IF_ERROR(reader.Skip(wire_type));
      continue;
    }
    std::string_view message;
    MODELPOOL_RETURN_IF_ERROR(reader.Bytes(&message));
    switch (field) {
      case 1:
        MODELPOOL_RETURN_IF_ERROR(ParsePiece(message, &model.pieces.emplace_back()));
        break;
      case 2:
        MODELPOOL_RETURN_IF_ERROR(ParseTrainerSpec(message, &model));
        break;
      case 3:
        MODELPOOL_RETURN_IF_ERROR(ParseNormalizerSpec(message, &model, /*denormalizer=*/false));
        break;
      case 5:
        MODELPOOL_RETURN_IF_ERROR(ParseNormalizerSpec(message, &model, /*denormalizer=*/true));
        break;
    }
  }
  return model;
}

}  // namespace modelpool::text_internal
