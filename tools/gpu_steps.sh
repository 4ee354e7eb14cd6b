#!/usr/bin/env bash
# Runs on a GPU machine from the repository root, with the Debian packages and the bench
# folder in .device/ (see the device recipe: get-debs.sh). Builds modelpool against the
# machine's PyTorch libtorch and runs the named steps in order, e.g.
#   tools/gpu_steps.sh build fixtures tests bench_tokenizer bench_generate
#   tools/gpu_steps.sh fixtures_models     # the BART, RoBERTa and XLM-R fixtures
# Each step's output goes to stdout and $OUT/gpu.log; fixtures are packed into $OUT/fixtures.tgz.
set -uo pipefail
out=${OUT:-$PWD/out}
mkdir -p "$out"
exec > >(tee -a "$out/gpu.log") 2>&1
source .device/deps-env.sh .device/debs >/dev/null  # (without an argument it would take ours)
# cpp-httplib's header needs OpenSSL's, zlib's and brotli's; their libraries are the machine's
# own where it has them, so that its Python does not load Debian's older copies.
for lib in libssl.so.3 libcrypto.so.3 libz.so.1 libbrotlicommon.so.1 libbrotlidec.so.1 libbrotlienc.so.1; do
  own=$(ldconfig -p | awk -v l=$lib '$1 == l { print $NF; exit }')
  [ -n "$own" ] && for name in $lib ${lib%.so.*}.so; do
    ln -sf "$own" /tmp/deps/usr/lib/x86_64-linux-gnu/$name
  done
done
# prometheus-cpp's CMake files check for civetweb's program, which only its server package has.
[ -e /tmp/deps/usr/bin/civetweb ] || { mkdir -p /tmp/deps/usr/bin && touch /tmp/deps/usr/bin/civetweb; }
build=/tmp/mp-build
corpus=/tmp/corpus
models=/tmp/models
export PYTHONUNBUFFERED=1

step_build() {
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODELPOOL_BUILD_BENCHMARKS=ON \
    -DMODELPOOL_BUILD_EXAMPLES=ON -DMODELPOOL_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" \
    >/tmp/configure.log 2>&1 || { tail -30 /tmp/configure.log; return 1; }
  grep -E "modelpool:" /tmp/configure.log
  # BUILD_TARGETS (space-separated) builds only those targets.
  cmake --build $build -j"$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS} -- -k 0 \
    >/tmp/build.log 2>&1 ||
    { grep -E "error|FAILED" /tmp/build.log | head -60; tail -5 /tmp/build.log; return 1; }
  grep -c "MODELPOOL_CUDA_KERNELS" $build/build.ninja | sed 's/^/build.ninja lines defining MODELPOOL_CUDA_KERNELS: /'
  nm -C $build/lib/libmodelpool.a 2>/dev/null | grep -m1 " T .*ResidualLayerNorm" || true
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
# The BART, RoBERTa and XLM-R fixtures (tiny random models with transformers' and
# sentence-transformers' outputs), each script run once, each model on its own; everything they
# wrote under tests/data is packed into $OUT/fixtures.tgz, as step_fixtures does.
step_fixtures_models() {
  step_corpus
  local failed=0
  python3 tools/make_bart_fixtures.py --corpus $corpus || failed=1
  python3 tools/make_roberta_fixtures.py || failed=1
  ls -la tests/data/bart tests/data/roberta tests/data/models 2>&1
  tar czf "$out/fixtures.tgz" tests/data
  return $failed
}
# The BPE and Unigram fixtures through Python's tokenizers and transformers (RobertaTokenizerFast,
# BartTokenizer, XLMRobertaTokenizerFast): the same ids as the committed bpe_expected.json.
step_fixtures_bpe() { python3 tools/make_bpe_fixtures.py tests/data/text; }
# Our CUDA kernels against float32 (tests/models/*_gpu_test.cc).
step_test_kernels() { ctest --test-dir $build -R '_gpu_test$' --output-on-failure; }
# The small-batch linear kernel against cuBLAS, shape by shape (benchmarks/linear_bench.cc).
step_bench_linear() { $build/benchmarks/linear_bench; }
# BERT's attention over packed rows, ours against flash attention, row length by row length
# (benchmarks/attention_bench.cc).
step_bench_attention() { $build/benchmarks/attention_bench; }
step_tests() { ctest --test-dir $build --output-on-failure -j4 2>&1 | tail -40; }
step_models() {
  step_corpus
  for m in bert-large t5-large; do
    [ -d $models/$m ] || python3 .device/bench/peers/make_random_models.py $corpus $models --only $m
  done
}
step_bench_tokenizer() {
  step_corpus
  local files="--corpus $corpus/corpus.txt --vocab $corpus/vocab.txt --spiece tests/data/text/t5-small/spiece.model --bpe tests/data/text/bpe/tokenizer.json --repeat 3"
  $build/benchmarks/tokenizer_bench $files --peer "python3 benchmarks/peers/hf_tokenize.py $files"
}
step_bench_generate() {
  step_models
  $build/benchmarks/generate_bench --model $models/t5-large --corpus $corpus/corpus.txt \
    --peer "python3 .device/bench/peers/hf_generate.py $models/t5-large $corpus/corpus.txt"
}
# PARITY_TEXTS_PER_CALL=1: one text a call, as decoder steps of one row (all 64 at once without).
step_parity_generate() {
  step_t5_large
  [ -f /tmp/ref_bf16.json ] ||
    python3 tools/reference_generate_ids.py $models/t5-large $corpus/corpus.txt /tmp/ref_bf16.json --dtype bfloat16 --docs 64 &&
    $build/benchmarks/generate_parity --model $models/t5-large --reference /tmp/ref_bf16.json --dtype bfloat16 \
      ${PARITY_TEXTS_PER_CALL:+--texts-per-call $PARITY_TEXTS_PER_CALL}
}
step_bart_large_cnn() {
  [ -d $models/bart-large-cnn ] || python3 tools/make_bart_bench_model.py $models
}
# A bart-large-cnn-shaped model: the folder's generation settings, fixed output length.
step_bench_generate_bart() {
  step_corpus
  step_bart_large_cnn
  $build/benchmarks/generate_bench --model $models/bart-large-cnn --corpus $corpus/corpus.txt \
    --peer "python3 tools/hf_generate_peer.py $models/bart-large-cnn $corpus/corpus.txt"
}
# Our generation alone with a switch (AB_SWITCH, default MODELPOOL_OVERLAPPED_LAUNCHES) off and
# on, twice each: the peer's time moves between runs more than the difference.
step_ab() {
  local switch=${AB_SWITCH:-MODELPOOL_OVERLAPPED_LAUNCHES}
  step_t5_large
  step_bart_large_cnn
  for m in bart-large-cnn t5-large; do
    for on in 0 1 0 1; do
      echo "== $m $switch=$on"
      env "$switch=$on" $build/benchmarks/generate_bench --model $models/$m \
        --corpus $corpus/corpus.txt | grep '"generate"'
    done
  done
}
step_parity_generate_bart() {
  step_corpus
  step_bart_large_cnn
  python3 tools/reference_generate_ids.py $models/bart-large-cnn $corpus/corpus.txt /tmp/ref_bart_bf16.json --dtype bfloat16 --docs 64 &&
    $build/benchmarks/generate_parity --model $models/bart-large-cnn --reference /tmp/ref_bart_bf16.json --dtype bfloat16
}
# Parity of both models with the decoder's kernels as chosen, then with attention on matrix
# products and with the fused epilogues off (Note [Decoder attention kernels], [Fused epilogues]).
step_parity_ablate() {
  step_parity_generate_bart
  for env in MODELPOOL_DECODER_ATTENTION=matmul MODELPOOL_FUSED_KERNELS=0; do
    echo "bart-large-cnn, $env"
    env $env $build/benchmarks/generate_parity --model $models/bart-large-cnn \
      --reference /tmp/ref_bart_bf16.json --dtype bfloat16
  done
  step_parity_generate
  for env in MODELPOOL_DECODER_ATTENTION=matmul MODELPOOL_FUSED_KERNELS=0; do
    echo "t5-large, $env"
    env $env $build/benchmarks/generate_parity --model $models/t5-large \
      --reference /tmp/ref_bf16.json --dtype bfloat16
  done
}
step_parity_embed() { $build/benchmarks/embed_parity; }
# bert-large (random weights, heads of 64) on its attention kernels in float16 against
# sentence-transformers in float32, 2,000 texts of the corpus (tools/compare_embeddings.py).
# Vectors in float16 on our attention kernel and on flash attention against
# sentence-transformers' in float32, for bert-large and (where bench_embed_minilm made it) the
# MiniLM shape.
step_parity_embed_large() {
  step_bert_large
  head -2000 $corpus/corpus.txt >/tmp/parity_texts.txt
  local failed=0
  for model in bert-large minilm-l6; do
    [ -d $models/$model ] || continue
    local vectors=()
    for kernel in packed flash; do
      MODELPOOL_BERT_ATTENTION=$kernel $build/examples/embed/modelpool-embed --model $models/$model \
        --input /tmp/parity_texts.txt --output /tmp/vectors_$kernel.npy --device cuda:0 \
        --dtype float16 2>&1 | tail -1
      vectors+=(/tmp/vectors_$kernel.npy)
    done
    echo "== $model"
    python3 tools/compare_embeddings.py $models/$model /tmp/parity_texts.txt "${vectors[@]}" || failed=1
  done
  return $failed
}
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
# all-MiniLM-L6-v2's shape (12 heads of 32, 6 layers), strings to vectors, against
# sentence-transformers, then with attention on flash attention.
step_bench_embed_minilm() {
  step_corpus
  [ -d $models/minilm-l6 ] ||
    python3 .device/bench/peers/make_random_models.py $corpus $models --only minilm-l6
  $build/benchmarks/embed_bench --model $models/minilm-l6 --corpus $corpus/corpus.txt --repeat 3 \
    --peer "python3 .device/bench/peers/st_embed.py $models/minilm-l6 $corpus/corpus.txt --batch-sizes 128 --no-pool"
  MODELPOOL_BERT_ATTENTION=flash $build/benchmarks/embed_bench --model $models/minilm-l6 \
    --corpus $corpus/corpus.txt --repeat 3 | grep modelpool_embed
}
step_sweep_embed() {
  step_bert_large
  for tokens in 8192 16384 32768; do
    $build/benchmarks/embed_bench --model $models/bert-large --corpus $corpus/corpus.txt \
      --repeat 3 --max-batch-tokens $tokens | grep modelpool_embed
  done
}

# The same corpus with the fused kernels off (Note [Fused BERT epilogues]), then the profile of
# both: kernel time against wall time, and the kernels that take it.
step_ablate_embed() {
  step_bert_large
  for env in MODELPOOL_FUSED_KERNELS=0 MODELPOOL_BERT_ATTENTION=flash MODELPOOL_BERT_ATTENTION=efficient; do
    echo "$env"
    env $env $build/benchmarks/embed_bench --model $models/bert-large \
      --corpus $corpus/corpus.txt --repeat 3 | grep modelpool_embed
  done
}
# Embeddings alone with a switch (AB_SWITCH, default MODELPOOL_BERT_ATTENTION) at each of
# AB_VALUES (default "packed flash") in turn, twice: runs move between rounds.
step_ab_embed() {
  local switch=${AB_SWITCH:-MODELPOOL_BERT_ATTENTION}
  step_bert_large
  for round in 1 2; do
    for value in ${AB_VALUES:-packed flash}; do
      echo "== $switch=$value (round $round)"
      env "$switch=$value" $build/benchmarks/embed_bench --model $models/bert-large \
        --corpus $corpus/corpus.txt --repeat 3 | grep modelpool_embed
    done
  done
}
step_profile_embed() {
  step_bert_large
  [ -x $build/benchmarks/embed_profile ] || { echo "embed_profile was not built"; return 1; }
  $build/benchmarks/embed_profile --model $models/bert-large --corpus $corpus/corpus.txt \
    --trace /tmp/embed_trace.json && gzip -c /tmp/embed_trace.json >"$out/embed_trace.json.gz"
  MODELPOOL_FUSED_KERNELS=0 $build/benchmarks/embed_profile --model $models/bert-large \
    --corpus $corpus/corpus.txt
}
# Where a summarization batch's time goes (t5-large, 32 texts, 64 new tokens): eager decoder
# steps against steps in a CUDA graph, greedy and 4 beams. PROFILE_BATCH texts (32),
# PROFILE_LINES lines of output each (24).
profile_generate() {  # MODEL STEPS...
  local model=$1
  shift
  for steps in "$@"; do
    for beams in 1 4; do
      echo "$model: MODELPOOL_DECODER_STEPS=$steps, $beams beams"
      MODELPOOL_DECODER_STEPS=$steps $build/benchmarks/generate_profile --model $models/$model \
        --corpus $corpus/corpus.txt --beams $beams --batch ${PROFILE_BATCH:-32} 2>&1 |
        grep -v '^\[20' | head -"${PROFILE_LINES:-24}"
    done
  done
}
step_profile_generate() { step_t5_large && profile_generate t5-large eager graph; }
step_profile_graphs() {
  step_t5_large && step_bart_large_cnn && profile_generate t5-large graph &&
    profile_generate bart-large-cnn graph
}
# The Chrome trace of the bart-large-cnn-shaped model's batch with 4 beams, for the ATen op that
# launched each kernel (tools/trace_ops.py), into $OUT.
step_trace_generate_bart() {
  step_corpus && step_bart_large_cnn || return 1
  $build/benchmarks/generate_profile --model $models/bart-large-cnn --corpus $corpus/corpus.txt \
    --beams 4 --trace /tmp/bart_trace.json 2>&1 | grep -v '^\[20' | head -3
  gzip -c /tmp/bart_trace.json >"$out/bart_trace.json.gz"
}
step_profile_generate_bart() { step_corpus && step_bart_large_cnn && profile_generate bart-large-cnn graph; }
# In-process scaling on one GPU: one worker, then two workers on the same GPU.
step_workers_one_gpu() {
  step_bert_large
  nvidia-smi dmon -s u -d 1 >"$out/dmon_workers.txt" 2>&1 &
  local dmon=$!
  for n in 1 2; do
    $build/benchmarks/worker_bench --model $models/bert-large --corpus $corpus/corpus.txt \
      --repeat 3 --workers-per-device $n | grep -E '"gpus"|workers'
  done
  kill $dmon
}

step_t5_large() {
  step_corpus
  [ -d $models/t5-large ] ||
    python3 .device/bench/peers/make_random_models.py $corpus $models --only t5-large
}
# Summaries through the WorkerPool: one worker, two workers on one GPU, every GPU, and
# transformers' generate on one GPU.
step_workers_summarize() {
  step_t5_large
  nvidia-smi dmon -s u -d 1 >"$out/dmon_summarize.txt" 2>&1 &
  local dmon=$!
  $build/benchmarks/summarize_workers_bench --model $models/t5-large --corpus $corpus/corpus.txt \
    --peer "python3 .device/bench/peers/hf_generate.py $models/t5-large $corpus/corpus.txt"
  kill $dmon
}

step_bench_workers() {
  step_bert_large
  nvidia-smi dmon -s u -d 1 >"$out/dmon.txt" 2>&1 &
  local dmon=$!
  $build/benchmarks/worker_bench --model $models/bert-large --corpus $corpus/corpus.txt --repeat 3 \
    --peer "python3 .device/bench/peers/st_embed.py $models/bert-large $corpus/corpus.txt --batch-sizes 128"
  kill $dmon
}
# Every GPU with two workers each (and one GPU with two).
step_workers_two_per_device() {
  step_bert_large
  nvidia-smi dmon -s u -d 1 >"$out/dmon_two_per_device.txt" 2>&1 &
  local dmon=$!
  $build/benchmarks/worker_bench --model $models/bert-large --corpus $corpus/corpus.txt \
    --repeat 3 --workers-per-device 2
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
# Requests joined into batches: join_bench (256 callers of one text against one corpus), then
# modelpool-server with bert-large fp16 under server_load: 256 clients of one short text, then
# 256 clients of 32 texts a request.
step_bench_server() {
  step_bert_large
  $build/benchmarks/join_bench --model $models/bert-large --dtype float16 --texts 16384 \
    --callers 256 --repeat 3
  local server=$build/examples/server/modelpool-server
  [ -x $server ] || { echo "no modelpool-server: cpp-httplib and prometheus-cpp are needed"; return 1; }
  $server --model bert=$models/bert-large --dtype float16 --port 0 --threads 512 \
    --max-queued 100000 >/tmp/server.out 2>/tmp/server.err &
  local pid=$!
  local url=""
  for _ in $(seq 600); do
    url=$(sed -n 's/^listening on //p' /tmp/server.out)
    [ -n "$url" ] && python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/ready')" "$url" 2>/dev/null && break
    sleep 0.5
  done
  for texts in 1 32; do
    $build/benchmarks/server_load --url "$url" --model bert --clients 256 --texts $texts \
      --seconds 30 --warmup 5
  done
  python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1] + '/metrics').read().decode())" "$url" |
    grep -E "^modelpool_(requests_total|batch_requests_(sum|count)|tokens_total|queue_wait_seconds_(sum|count)|compute_seconds_(sum|count))"
  kill -TERM $pid && wait $pid
  echo "server exit status $?"
}
# A batch that really runs out of CUDA memory (the allocator capped at 3 GiB) comes back whole.
step_oom_check() {
  step_bert_large
  $build/benchmarks/oom_split_check --model $models/bert-large --corpus $corpus/corpus.txt \
    --texts 2048 --max-batch-tokens 262144 --memory-gib 3
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
