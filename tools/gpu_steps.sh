#!/usr/bin/env bash
# Runs on a GPU machine from the repository root, with the Debian packages and the bench
# folder in .device/ (see the device recipe: get-debs.sh). Builds modelpool against the
# machine's PyTorch libtorch and runs the named steps in order, e.g.
#   tools/gpu_steps.sh build fixtures tests bench_tokenizer bench_generate
# Each step's output goes to stdout and $OUT/gpu.log; fixtures are packed into $OUT/fixtures.tgz.
set -uo pipefail
out=${OUT:-$PWD/out}
mkdir -p "$out"
exec > >(tee -a "$out/gpu.log") 2>&1
source .device/deps-env.sh .device/debs >/dev/null  # (without an argument it would take ours)
build=/tmp/mp-build
corpus=/tmp/corpus
models=/tmp/models
export PYTHONUNBUFFERED=1

step_build() {
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODELPOOL_BUILD_BENCHMARKS=ON \
    -DMODELPOOL_BUILD_EXAMPLES=ON >/tmp/configure.log 2>&1 || { tail -30 /tmp/configure.log; return 1; }
  cmake --build $build -j"$(nproc)" -- -k 0 >/tmp/build.log 2>&1 ||
    { grep -E "error|FAILED" /tmp/build.log | head -60; tail -5 /tmp/build.log; return 1; }
}
step_corpus() { [ -f $corpus/corpus.txt ] || python3 .device/bench/make_corpus.py $corpus; }
step_fixtures() {
  step_corpus
  python3 tools/make_tokenizer_fixtures.py /tmp/text-fixtures --bench .device/bench &&
    cp /tmp/text-fixtures/* tests/data/text/
  python3 tools/make_t5_fixtures.py --corpus $corpus
  [ -f tools/make_bert_fixtures.py ] && python3 tools/make_bert_fixtures.py
  tar czf "$out/fixtures.tgz" tests/data
}
step_tests() { ctest --test-dir $build --output-on-failure -j4 2>&1 | tail -40; }
step_models() {
  step_corpus
  for m in bert-large t5-large; do
    [ -d $models/$m ] || python3 .device/bench/peers/make_random_models.py $corpus $models --only $m
  done
}
step_bench_tokenizer() {
  step_corpus
  $build/benchmarks/tokenizer_bench --corpus $corpus/corpus.txt --vocab $corpus/vocab.txt \
    --spiece tests/data/text/t5-small/spiece.model --repeat 3 \
    --peer "python3 benchmarks/peers/hf_tokenize.py --corpus $corpus/corpus.txt --vocab $corpus/vocab.txt --spiece tests/data/text/t5-small/spiece.model --repeat 3"
}
step_bench_generate() {
  step_models
  $build/benchmarks/generate_bench --model $models/t5-large --corpus $corpus/corpus.txt \
    --peer "python3 .device/bench/peers/hf_generate.py $models/t5-large $corpus/corpus.txt"
}
step_parity_generate() {
  step_models
  python3 tools/t5_reference_ids.py $models/t5-large $corpus/corpus.txt /tmp/ref_bf16.json --dtype bfloat16 --docs 64 &&
    $build/benchmarks/generate_parity --model $models/t5-large --reference /tmp/ref_bf16.json --dtype bfloat16
}
step_parity_embed() { $build/benchmarks/embed_parity; }
step_bert_large() {
  step_corpus
  [ -d $models/bert-large ] ||
    python3 .device/bench/peers/make_random_models.py $corpus $models --only bert-large
}
step_bench_embed() {
  step_bert_large
  $build/benchmarks/embed_bench --model $models/bert-large --corpus $corpus/corpus.txt --repeat 3 \
    --peer "python3 .device/bench/peers/st_embed.py $models/bert-large $corpus/corpus.txt --batch-sizes 128 --no-pool"
}
step_sweep_embed() {
  step_bert_large
  for tokens in 8192 16384 32768; do
    $build/benchmarks/embed_bench --model $models/bert-large --corpus $corpus/corpus.txt \
      --repeat 3 --max-batch-tokens $tokens | grep modelpool_embed
  done
}

step_bench_workers() {
  step_bert_large
  nvidia-smi dmon -s u -d 1 >"$out/dmon.txt" 2>&1 &
  local dmon=$!
  $build/benchmarks/worker_bench --model $models/bert-large --corpus $corpus/corpus.txt --repeat 3 \
    --peer "python3 .device/bench/peers/st_embed.py $models/bert-large $corpus/corpus.txt --batch-sizes 128"
  kill $dmon
}
# Three models on one GPU whose budget holds two: loads, evictions, throughput, p99 per class.
step_bench_scheduler() {
  step_corpus
  for m in bert-large t5-large minilm-l6; do
    [ -d $models/$m ] || python3 .device/bench/peers/make_random_models.py $corpus $models --only $m
  done
  $build/benchmarks/scheduler_gpu_bench --embed bert-large=$models/bert-large,minilm=$models/minilm-l6 \
    --summarize t5-large=$models/t5-large --corpus $corpus/corpus.txt --threads 8 --seconds 120
}
# Each test case of the binaries that crash here, alone, then a backtrace of the binary.
step_backtraces() {
  local debugger
  debugger=$(command -v cuda-gdb || command -v gdb || true)
  for t in embedding_model_files_test embedding_model_test; do
    "$build/tests/$t" --list-test-names-only | while read -r name; do
      [ -n "$name" ] || continue
      "$build/tests/$t" "$(printf '%s' "$name" | sed 's/[],[]/\\&/g')" >/tmp/case.log 2>&1
      echo "rc=$? $t: $name"
    done
    [ -n "$debugger" ] &&
      "$debugger" -batch -ex run -ex bt --args "$build/tests/$t" 2>&1 | grep -E "^#|signal|SIG" | head -30
  done
}

for step in "$@"; do
  echo "=== $step ($SECONDS s)"
  "step_$step" || echo "!!! $step failed"
done
echo "=== done ($SECONDS s)"
