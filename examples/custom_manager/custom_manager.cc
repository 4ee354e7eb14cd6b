// Serving your own libtorch model through modelpool: a subclass of AbstractModelManager<T>
// says how to load one instance on a device, and the manager pools instances over the GPUs
// (or the CPU) and hands them out as leases. Eight threads share the pool here.
//
//   custom_manager                     a small scorer built in code
//   custom_manager --torchscript m.pt  a TorchScript module of yours: forward(Tensor[N, 16])
#include <torch/script.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "fmt/format.h"
#include "modelpool/modelpool.h"

namespace {

constexpr int64_t kFeatures = 16;

// One instance: either a TorchScript module or a two-layer MLP, on one device.
class Scorer {
 public:
  Scorer(torch::jit::script::Module module, torch::Device device)
      : scripted_(std::move(module)), device_(device) {}
  Scorer(torch::nn::Sequential mlp, torch::Device device) : mlp_(std::move(mlp)), device_(device) {}

  // Scores a batch of feature rows. Not thread-safe: a lease gives one thread at a time.
  torch::Tensor Score(const torch::Tensor& features) {
    torch::InferenceMode guard;
    torch::Tensor input = features.to(device_);
    torch::Tensor out = mlp_ ? mlp_->forward(input) : scripted_.forward({input}).toTensor();
    return out.cpu();
  }

 private:
  torch::jit::script::Module scripted_;
  torch::nn::Sequential mlp_{nullptr};
  torch::Device device_;
};

class ScorerManager : public modelpool::AbstractModelManager<Scorer> {
 public:
  static absl::StatusOr<std::unique_ptr<ScorerManager>> Create(std::string torchscript_path) {
    MODELPOOL_ASSIGN_OR_RETURN(modelpool::Settings settings, modelpool::Settings::FromEnv());
    auto manager = std::unique_ptr<ScorerManager>(
        new ScorerManager(std::move(settings), std::move(torchscript_path)));
    MODELPOOL_RETURN_IF_ERROR(manager->Initialize());
    return manager;
  }

  std::string model_name() const override { return path_.empty() ? "mlp-scorer" : path_; }
  std::string model_type() const override { return "scorer"; }

 protected:
  absl::StatusOr<std::unique_ptr<Scorer>> LoadInstance(const modelpool::Device& device) override {
    const torch::Device where =
        device.is_cuda() ? torch::Device(torch::kCUDA, device.index) : torch::Device(torch::kCPU);
    if (!path_.empty()) {
      // torch::jit::load throws c10::Error on a bad file: the manager turns it into a status.
      torch::jit::script::Module module = torch::jit::load(path_, where);
      module.eval();
      return std::make_unique<Scorer>(std::move(module), where);
    }
    torch::manual_seed(0);  // every instance computes the same function
    torch::nn::Sequential mlp(torch::nn::Linear(kFeatures, 64), torch::nn::ReLU(),
                              torch::nn::Linear(64, 1));
    mlp->to(where);
    mlp->eval();
    return std::make_unique<Scorer>(std::move(mlp), where);
  }

  int64_t EstimateInstanceBytes() const override { return int64_t{64} << 20; }

 private:
  ScorerManager(modelpool::Settings settings, std::string path)
      // TorchDevices(): not the GPUs a CPU-only libtorch cannot use.
      : AbstractModelManager(std::move(settings), modelpool::TorchDevices()),
        path_(std::move(path)) {}

  const std::string path_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string torchscript;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--torchscript" && i + 1 < argc) {
      torchscript = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--torchscript MODULE.pt]\n", argv[0]);
      return 2;
    }
  }
  absl::StatusOr<std::unique_ptr<ScorerManager>> manager = ScorerManager::Create(torchscript);
  if (!manager.ok()) {
    std::fprintf(stderr, "error: %s\n", manager.status().ToString().c_str());
    return 1;
  }

  constexpr int kThreads = 8, kBatchesPerThread = 50;
  std::atomic<int> failures{0};
  std::atomic<int64_t> rows{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatchesPerThread; ++b) {
        absl::StatusOr<modelpool::Lease<Scorer>> lease = (*manager)->Acquire(absl::Seconds(30));
        if (!lease.ok()) {
          ++failures;
          errors[t] = lease.status().ToString();
          return;
        }
        try {
          torch::Tensor scores = (*lease)->Score(torch::randn({32, kFeatures}));
          rows += scores.size(0);
        } catch (const std::exception& e) {
          lease->Destroy();  // a failed instance is not handed to the next thread
          ++failures;
          errors[t] = e.what();
          return;
        }
      }  // each lease returns to the pool here
    });
  }
  for (auto& thread : threads) thread.join();

  const modelpool::PoolStats stats = (*manager)->Stats();
  fmt::print("{} threads scored {} rows on {}; {}\n", kThreads, rows.load(),
             (*manager)->plan().ToString(), stats.ToString());
  for (const std::string& error : errors) {
    if (!error.empty()) std::fprintf(stderr, "error: %s\n", error.c_str());
  }
  return failures == 0 ? 0 : 1;
}
