#!/usr/bin/env python3
"""modelpool-server as clients see it: every route, API keys, hostile requests, many clients at
once, /metrics parsed by prometheus_client, and SIGTERM. With --openai-client, instead, the
official OpenAI client for Node calls /v1/embeddings (float and base64) and its vectors are
compared with what the embed program prints for the same texts.

  server_test.py --server PATH --embed PATH --models DIR [--clients 64 --requests 200]
  server_test.py --openai-client --node-dir DIR --server PATH --embed PATH --models DIR

Exits 77 (skipped) when --openai-client finds no node or no `openai` package in DIR.
Debian's python3 and python3-prometheus-client only.
"""
import argparse
import base64
import http.client
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

KEY = "test-key-1234"
TEXTS = ["The river runs under the stone bridge.", "A quiet market after the rain.",
         "people meet where the light falls", "ünïcødé text, with accents", "x"]
SKIPPED = 77


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class Server:
    """Starts modelpool-server on a free port and stops it with SIGTERM."""

    def __init__(self, program, models, extra=(), env=None, wait_ready=True):
        # One keep-alive connection holds one HTTP thread: 80 cover check_load's 64 clients,
        # which would otherwise wait for one another's 200 requests (and time out when slow).
        args = [program, "--port", "0", "--api-key", KEY, "--read-timeout", "2s",
                "--write-timeout", "5s", "--threads", "80", "--drain-timeout", "10s"]
        for name, folder in models.items():
            args += ["--model", f"{name}={folder}"]
        self.process = subprocess.Popen(list(args) + list(extra), stdout=subprocess.PIPE,
                                        stderr=sys.stderr, text=True,
                                        env=dict(os.environ, **(env or {})))
        line = self.process.stdout.readline()
        check(line.startswith("listening on http://"), f"the server said {line!r}")
        self.host, port = line.strip()[len("listening on http://"):].rsplit(":", 1)
        self.port = int(port)
        deadline = time.monotonic() + 60
        while wait_ready and self.request("GET", "/ready")[0] != 200:
            check(time.monotonic() < deadline, "the server was not ready within 60 s")
            check(self.process.poll() is None, "the server exited while loading")
            time.sleep(0.05)

    def request(self, method, path, body=None, key=KEY, headers=None, timeout=30):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, data, response
        finally:
            connection.close()

    def json(self, method, path, body=None, status=200, **kwargs):
        got, data, response = self.request(method, path, body, **kwargs)
        check(got == status, f"{method} {path}: status {got}, not {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    def error(self, method, path, body, status, **kwargs):
        """A request that must fail with `status` and OpenAI's error shape."""
        reply = self.json(method, path, body, status=status, **kwargs)
        check(set(reply) == {"error"} and {"message", "type", "code"} <= set(reply["error"]),
              f"{method} {path}: not an OpenAI error: {reply}")
        return reply

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            fail("the server did not exit within 60 s of SIGTERM")
        check(code == 0, f"the server exited with {code} after SIGTERM")


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def reference_vectors(embed, model, work):
    texts = os.path.join(work, "texts.json")
    vectors = os.path.join(work, "vectors.json")
    with open(texts, "w", encoding="utf-8") as f:
        json.dump(TEXTS, f)
    subprocess.run([embed, "--model", model, "--json-in", texts, "--json-out", vectors],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(vectors, encoding="utf-8") as f:
        return json.load(f), texts


def check_vectors(got, want, what):
    check(len(got) == len(want), f"{what}: {len(got)} vectors, not {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        check(len(g) == len(w), f"{what}[{i}]: dimension {len(g)}, not {len(w)}")
        c = cosine(g, w)
        check(c >= 0.99999, f"{what}[{i}]: cosine {c} with the embed program's vector")


def metric_samples(server):
    from prometheus_client.parser import text_string_to_metric_families
    status, data, response = server.request("GET", "/metrics")
    check(status == 200, f"/metrics: {status}")
    check(response.getheader("Content-Type", "").startswith("text/plain"), "/metrics type")
    samples = {}
    for family in text_string_to_metric_families(data.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def succeeded(samples, model):
    return samples.get(("modelpool_requests_total",
                        (("model", model), ("outcome", "succeeded"))), 0)


def check_routes(server, reference):
    check(server.json("GET", "/health", key=None) == {"status": "ok"}, "/health")
    check(server.json("GET", "/ready")["status"] == "ready", "/ready")
    models = server.json("GET", "/v1/models")
    check(sorted(m["id"] for m in models["data"]) == ["t5", "tiny"], f"/v1/models: {models}")

    floats = server.json("POST", "/v1/embeddings", {"model": "tiny", "input": TEXTS})
    check(floats["object"] == "list" and floats["model"] == "tiny", "embeddings reply shape")
    check([d["index"] for d in floats["data"]] == list(range(len(TEXTS))), "indices")
    check(floats["usage"]["prompt_tokens"] == floats["usage"]["total_tokens"] > 0, "usage")
    check_vectors([d["embedding"] for d in floats["data"]], reference, "float")
    b64 = server.json("POST", "/v1/embeddings",
                      {"model": "tiny", "input": TEXTS, "encoding_format": "base64"})
    decoded = []
    for d in b64["data"]:
        raw = base64.b64decode(d["embedding"])
        decoded.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
    check_vectors(decoded, reference, "base64")
    cut = server.json("POST", "/v1/embeddings", {"model": "tiny", "input": "x", "dimensions": 16})
    vector = cut["data"][0]["embedding"]
    check(len(vector) == 16, "dimensions cuts the vector")
    check(abs(math.sqrt(sum(v * v for v in vector)) - 1) < 1e-4, "dimensions renormalizes")
    ids = server.json("POST", "/v1/embeddings", {"model": "tiny", "input": [[2, 17, 3]]})
    check(ids["usage"]["prompt_tokens"] == 3, f"token ids: {ids['usage']}")

    tei = server.json("POST", "/embed", {"inputs": TEXTS})
    check_vectors(tei, reference, "/embed")
    raw = server.json("POST", "/embed", {"inputs": "x", "normalize": False})
    check(len(raw) == 1 and len(raw[0]) == len(reference[0]), "/embed of one string")
    info = server.json("GET", "/info")
    check(info["model_id"] == "tiny" and info["max_input_length"] > 0, f"/info: {info}")
    long_text = "river " * 5000
    server.error("POST", "/embed", {"inputs": long_text}, 413)
    check(len(server.json("POST", "/embed", {"inputs": long_text, "truncate": True})) == 1,
          "/embed truncates when asked")

    summaries = server.json("POST", "/summarize", {
        "inputs": ["the river runs under the bridge", "a market after rain"],
        "parameters": {"max_new_tokens": 6, "num_beams": 2}})
    check(len(summaries) == 2 and all(isinstance(s["summary_text"], str) for s in summaries),
          f"/summarize: {summaries}")

    job = server.json("POST", "/jobs", {"model": "tiny", "input": ["a job"], "priority": "high"},
                      status=202)
    check(isinstance(job["id"], int) and job["status"] in ("queued", "running", "succeeded",
                                                           "loading", "pending"), f"job: {job}")
    deadline = time.monotonic() + 30
    while True:
        state = server.json("GET", f"/jobs/{job['id']}")
        if state["status"] == "succeeded":
            break
        check(state["status"] not in ("failed", "cancelled", "expired"), f"job ended: {state}")
        check(time.monotonic() < deadline, "the job did not end within 30 s")
        time.sleep(0.02)
    check(state["priority"] == "high" and state["finished_at"] >= state["created_at"],
          f"job timestamps: {state}")
    check(len(state["result"]["data"][0]["embedding"]) == len(reference[0]), "job result")
    server.error("DELETE", f"/jobs/{job['id']}", None, 409)
    t5_job = server.json("POST", "/jobs", {"model": "t5", "input": "summarize this",
                                           "parameters": {"max_new_tokens": 4}}, status=202)
    check(t5_job["id"] > job["id"], "job ids grow")
    expired = server.json("POST", "/jobs", {"model": "tiny", "input": "late", "deadline_ms": 0},
                          status=202)
    deadline = time.monotonic() + 30
    while server.json("GET", f"/jobs/{expired['id']}")["status"] in ("pending", "queued"):
        check(time.monotonic() < deadline, "the expired job did not end")
        time.sleep(0.02)
    server.error("GET", "/jobs/999999999", None, 404)
    server.error("DELETE", "/jobs/999999999", None, 404)
    server.error("GET", "/jobs/abc", None, 404)

    stats = server.json("GET", "/stats")
    check({"devices", "models", "workers", "queue_depth"} <= set(stats), f"/stats: {stats}")
    check(sorted(m["model"] for m in stats["models"]) == ["t5", "tiny"], "/stats models")


def good(server):
    reply = server.json("POST", "/v1/embeddings", {"model": "tiny", "input": "still here"})
    check(len(reply["data"]) == 1, "a good request after a hostile one")


def check_auth(server):
    server.error("GET", "/v1/models", None, 401, key=None)
    server.error("GET", "/v1/models", None, 401, key="wrong")
    server.error("GET", "/metrics", None, 401, key=KEY + "x")
    server.error("POST", "/v1/embeddings", {"model": "tiny", "input": "x"}, 401, key="")
    status, _, _ = server.request("GET", "/health", key="wrong")
    check(status == 200, "/health needs no key")
    good(server)


def raw_exchange(server, payload, timeout=10):
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return data


def check_hostile(server):
    headers = {"Content-Type": "application/json"}
    hostile = [
        ("malformed JSON", b'{"model": "tiny", "input": [', 400),
        ("not an object", b'[1, 2]', 400),
        ("wrong type", b'{"model": "tiny", "input": 5}', 400),
        ("wrong model type", b'{"model": 5, "input": "x"}', 400),
        ("empty input", b'{"model": "tiny", "input": []}', 400),
        ("invalid UTF-8", b'{"model": "tiny", "input": "\xff\xfe\xfd"}', 400),
        ("unknown model", b'{"model": "nope", "input": "x"}', 404),
        ("summarizer as embedder", b'{"model": "t5", "input": "x"}', 400),
        ("bad encoding", b'{"model": "tiny", "input": "x", "encoding_format": "hex"}', 400),
        ("too many dimensions", b'{"model": "tiny", "input": "x", "dimensions": 100000}', 400),
        ("deep nesting", b'{"model": "tiny", "input": ' + b"[" * 100000 + b"]" * 100000 + b"}",
         400),
        ("100k inputs", json.dumps({"model": "tiny", "input": ["a"] * 100000}).encode(), 413),
    ]
    for what, body, status in hostile:
        reply = server.error("POST", "/v1/embeddings", body, status, headers=headers)
        check(reply["error"]["message"], f"{what}: an empty message")
        good(server)
    server.error("GET", "/no/such/route", None, 404)
    server.error("POST", "/summarize", {"inputs": "x", "parameters": {"num_beams": "two"}}, 400)
    server.error("POST", "/jobs", {"model": "tiny", "input": "x", "priority": "urgent"}, 400)
    good(server)

    big = b'{"model": "tiny", "input": "' + b"a" * (20 << 20) + b'"}'
    request = (f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(big)}\r\n\r\n").encode()
    reply = raw_exchange(server, request + big)
    check(reply.startswith(b"HTTP/1.1 413"), f"a 20 MB body: {reply[:100]!r}")
    check(b'"error"' in reply, "a 20 MB body gets an OpenAI error")
    good(server)

    # A client that sends one byte a second holds one connection, not the server.
    slow_done = threading.Event()

    def slow_client():
        try:
            with socket.create_connection((server.host, server.port), timeout=10) as s:
                for byte in b"POST /v1/embeddings HTTP/1.1\r\n":
                    s.sendall(bytes([byte]))
                    if slow_done.wait(1.0):
                        return
        except OSError:
            pass  # the server closed it: its read timeout

    slow = threading.Thread(target=slow_client)
    slow.start()
    time.sleep(1.5)
    good(server)
    slow_done.set()
    slow.join()
    good(server)


def check_load(server, clients, requests):
    before = succeeded(metric_samples(server), "tiny")
    failures = []
    counts = [0] * clients

    def client(index):
        try:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
            for i in range(requests):
                body = json.dumps({"model": "tiny", "input": f"client {index} text {i}"})
                connection.request("POST", "/v1/embeddings", body=body,
                                   headers={"Authorization": f"Bearer {KEY}",
                                            "Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {data[:200]!r}")
                    return
                counts[index] += 1
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
            connection.close()
        except Exception as error:  # a thread's failure is reported on the main thread
            failures.append(repr(error))

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    check(not failures, f"{len(failures)} clients failed, the first: {failures[:1]}")
    total = sum(counts)
    check(total == clients * requests, f"{total} answered of {clients * requests}")
    samples = metric_samples(server)
    counted = succeeded(samples, "tiny") - before
    check(counted == total, f"/metrics counted {counted} requests, the clients {total}")
    print(f"{clients} clients x {requests} requests: {total / seconds:.0f} requests/s")


def check_burst(server, clients=256):
    """Clients that all connect at once are all answered (Note [Listen backlog]): every
    connection is opened before any request is sent, as fast as one thread can; then every
    request is sent before any reply is read."""
    with open("/proc/sys/net/core/somaxconn") as f:
        clients = min(clients, int(f.read()))  # the kernel's cap on any backlog
    body = json.dumps({"model": "tiny", "input": "burst"}).encode()
    request = (f"POST /v1/embeddings HTTP/1.1\r\nHost: {server.host}\r\n"
               f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    sockets = []
    for _ in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((server.host, server.port))
        sockets.append(s)
    failed = []
    deadline = time.monotonic() + 120
    sent = []
    for s in sockets:
        try:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.sendall(request)
            sent.append(s)
        except OSError as error:
            failed.append(repr(error))
            s.close()
    for s in sent:
        try:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
            if not reply.startswith(b"HTTP/1.1 200"):
                failed.append(reply[:60])
        except OSError as error:
            failed.append(repr(error))
        finally:
            s.close()
    check(not failed, f"{len(failed)} of {clients} clients connecting at once failed: {failed[:3]}")


def check_retry_after(server, method, path, body, status):
    got, data, response = server.request(method, path, body)
    check(got == status, f"{method} {path}: status {got}, not {status}: {data[:200]!r}")
    check(response.getheader("Retry-After") == "1", f"{method} {path}: no Retry-After with {got}")
    check("error" in json.loads(data), f"{method} {path}: not an OpenAI error: {data[:200]!r}")


def check_overloaded(args, tiny):
    """A full queue answers 429 with Retry-After, and the requests it took are answered."""
    # Every call takes 3 s, and no request joins another: a worker waiting for joiners takes in
    # those that arrive within its window whatever the queue's size, so with joining on, eight
    # requests sent at once could all run in one batch and none be refused (seen under ASan).
    server = Server(args.server, {"tiny": tiny}, extra=["--max-queued", "1"],
                    env={"MODELPOOL_FAULTS": "stall:p=1,for=3s", "MODELPOOL_BATCH_WINDOW": "0"})
    try:
        statuses = []

        def request(index):
            # Texts of their own: identical requests in flight would merge into one job.
            got, _, response = server.request("POST", "/v1/embeddings",
                                              {"model": "tiny", "input": f"a slow call {index}"})
            statuses.append((got, response.getheader("Retry-After")))

        threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(code for code, _ in statuses)
        check(set(codes) <= {200, 429} and 200 in codes and 429 in codes,
              f"8 requests against a queue of 1: {codes}")
        check(all(after == "1" for code, after in statuses if code == 429),
              f"429 without Retry-After: {statuses}")
        server.stop()
    finally:
        if server.process.poll() is None:
            server.process.kill()


def check_not_ready(args, tiny):
    """Until its models load the server answers 503 with Retry-After; /health stays 200."""
    server = Server(args.server, {"tiny": tiny}, env={"MODELPOOL_FAULTS": "load:p=1"},
                    wait_ready=False)  # the model never loads
    try:
        check_retry_after(server, "GET", "/ready", None, 503)
        check_retry_after(server, "POST", "/v1/embeddings", {"model": "tiny", "input": "x"}, 503)
        server.json("GET", "/health")
        server.stop()
    finally:
        if server.process.poll() is None:
            server.process.kill()


def check_sigterm(server):
    results = []

    def request():
        status, _, _ = server.request("POST", "/v1/embeddings",
                                      {"model": "tiny", "input": ["in flight"] * 64})
        results.append(status)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    server.stop()
    for t in threads:
        t.join()
    # Requests that reached the server before SIGTERM are answered; later ones find it closed.
    check(all(status in (200, 503) for status in results), f"in flight at SIGTERM: {results}")


def run_openai_client(args, server, reference, texts):
    node = shutil.which("node")
    if node is None:
        print("SKIPPED: no node program (Node.js 18 or later is needed)")
        sys.exit(SKIPPED)
    if not os.path.isdir(os.path.join(args.node_dir, "node_modules", "openai")):
        print(f"SKIPPED: no npm package openai in {args.node_dir} "
              f"(npm install --prefix {args.node_dir} openai@4)")
        sys.exit(SKIPPED)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai_client.cjs")
    result = subprocess.run([node, script, args.node_dir, f"http://{server.host}:{server.port}/v1",
                             KEY, "tiny", texts], capture_output=True, text=True, timeout=120)
    check(result.returncode == 0, f"the OpenAI client failed: {result.stderr}")
    vectors = json.loads(result.stdout)
    for form in ("float", "base64", "default"):
        check_vectors(vectors[form], reference, f"openai client, {form}")
    check(vectors["float_usage"]["prompt_tokens"] > 0, "usage from the client")
    print("the OpenAI client's vectors match the embed program's")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--embed", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--openai-client", action="store_true")
    parser.add_argument("--node-dir", default="")
    args = parser.parse_args()
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        print(f"SKIPPED: {sys.executable} has no prometheus_client "
              "(Debian: apt-get install python3-prometheus-client)")
        sys.exit(SKIPPED)
    if args.openai_client and (shutil.which("node") is None or not os.path.isdir(
            os.path.join(args.node_dir, "node_modules", "openai"))):
        run_openai_client(args, None, None, None)  # says why and exits 77
    tiny = os.path.join(args.models, "bert-tiny-cls")
    with tempfile.TemporaryDirectory() as work:
        reference, texts = reference_vectors(args.embed, tiny, work)
        server = Server(args.server, {"tiny": tiny, "t5": os.path.join(args.models, "t5-tiny-relu")})
        try:
            if args.openai_client:
                run_openai_client(args, server, reference, texts)
                server.stop()
                return
            check_routes(server, reference)
            check_auth(server)
            check_hostile(server)
            check_load(server, args.clients, args.requests)
            check_burst(server)
            check_sigterm(server)
        finally:
            if server.process.poll() is None:
                server.process.kill()
        check_overloaded(args, tiny)
        check_not_ready(args, tiny)
    print("modelpool-server passed")


if __name__ == "__main__":
    main()
