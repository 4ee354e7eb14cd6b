#ifndef MODELPOOL_LIB_MODELS_BERT_BERT_ENCODER_H_
#define MODELPOOL_LIB_MODELS_BERT_BERT_ENCODER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/models/bert/bert_config.h"
#include "lib/models/encoder.h"
#include "lib/models/formats/json_file.h"

namespace modelpool {

// BertArchitecture
//
// The `EncoderArchitecture` of the BERT family (Hugging Face's BertModel without the pooler):
// BERT itself, and, through `BertConfig::position_offset` and the checkpoint prefixes, the
// encoders that share its layers.
class BertArchitecture : public EncoderArchitecture {
 public:
  // `prefixes`: what the checkpoint may put before the state-dict names, tried in order
  // (e.g. "" then "bert." for the checkpoints of BertFor* heads).
  BertArchitecture(BertConfig config, std::vector<std::string> prefixes);

  // Reads a `model_type` "bert" config.json.
  static absl::StatusOr<std::unique_ptr<EncoderArchitecture>> Read(const JsonFile& config);

  const EncoderShape& shape() const override { return shape_; }
  absl::Status Bind(const SafetensorsCheckpoint& checkpoint,
                    const std::string& checkpoint_dir) override;
  std::vector<std::string> UnusedTensors(const SafetensorsCheckpoint& checkpoint) const override;
  int64_t num_parameters() const override;
  int64_t WorkspaceBytes(int64_t tokens, int64_t element_bytes) const override;
  std::shared_ptr<const Encoder> Load(const SafetensorsCheckpoint& checkpoint, c10::Device device,
                                      c10::ScalarType dtype) const override;

  const BertConfig& config() const { return config_; }

 private:
  const BertConfig config_;
  const std::vector<std::string> prefixes_;
  EncoderShape shape_;
  // What the checkpoint puts before the state-dict names, and each state-dict name -> the
  // checkpoint's name for it; set by Bind().
  std::string prefix_;
  std::map<std::string, std::string> stored_names_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_BERT_BERT_ENCODER_H_
