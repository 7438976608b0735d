"""Load on ``e5np serve`` over loopback (issue #15), against in-process ``encode`` of the same texts.

  python benchmarks/serve_load.py [--model FOLDER] [--seconds 30] [--out benchmarks/results/serve-load]

For each request kind (one query; 32 passages), on a fresh server:
- in-process: ``model.encode`` of the same requests one after another (no server), texts/s;
- closed loop at concurrency 1, 2, 4, 8, 16: requests/s, texts/s, p50/p95/p99 latency, non-2xx;
- open loop (Poisson arrivals) at 0.8x, 1.0x and 1.2x the best closed-loop rate, on a second
  server whose ``--max-queue`` holds about 2 s of work (in-process rate x 2): the same, and how
  many got 429 (the closed loop runs with the default queue, which its clients cannot overfill).
Server RSS is sampled every second throughout. The client is asyncio over raw HTTP/1.1 keep-alive
connections (a few tens of microseconds a request), so it takes little of the 2 cores from the
server. Requests are OpenAI's ``/v1/embeddings`` with base64 floats, what the openai client sends;
the first reply of each level is checked against ``encode`` bit for bit.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

CONCURRENCY = (1, 2, 4, 8, 16)
OPEN_LOOP = (0.8, 1.0, 1.2)


def request_kinds(folder: Path) -> dict[str, list[list[str]]]:
    from workloads import make_workload
    queries = make_workload("queries", folder / "tokenizer.json")
    passages = make_workload("passages", folder / "tokenizer.json")
    return {"1 query": [[q] for q in queries], "32 passages": [passages[i:i + 32] for i in range(0, 256, 32)]}


class Connection:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: bytes, body: bytes, port: int) -> tuple[int, bytes]:
        """One request; on a connection the server closed meanwhile (uvicorn's 5 s keep-alive
        timeout) it reconnects and sends again, as HTTP clients do."""
        request = (b"POST %s HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                   b"content-length: %d\r\n\r\n%s" % (path, len(body), body))
        self.writer.write(request)
        line = await self.reader.readline()
        if not line:
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
            self.writer.write(request)
            line = await self.reader.readline()
        status = int(line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


def body(texts: list[str]) -> bytes:
    return json.dumps({"input": texts, "model": "e5", "encoding_format": "base64"}).encode()


def decode(reply: bytes) -> np.ndarray:
    return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in json.loads(reply)["data"]])


def summarize(latencies: list[float], statuses: list[int], texts: int, seconds: float) -> dict:
    ok = [t for t, s in zip(latencies, statuses) if s == 200]
    pct = (lambda q: float(np.percentile(ok, q)) * 1000 if ok else float("nan"))
    return {"requests_per_s": len(ok) / seconds, "texts_per_s": len(ok) * texts / seconds, "p50_ms": pct(50),
            "p95_ms": pct(95), "p99_ms": pct(99), "ok": len(ok), "non_2xx": len(statuses) - len(ok),
            "status_429": statuses.count(429)}


async def closed_loop(port: int, requests: list[list[str]], concurrency: int, seconds: float, check) -> dict:
    bodies = [body(r) for r in requests]
    latencies, statuses = [], []
    deadline = time.perf_counter() + seconds

    async def worker(k: int):
        connection, i = await Connection.open(port), k
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status, reply = await connection.post(b"/v1/embeddings", bodies[i % len(bodies)], port)
            latencies.append(time.perf_counter() - start)
            statuses.append(status)
            if check is not None and k == 0 and i == 0:
                check(requests[0], reply)
            i += concurrency
        connection.writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return summarize(latencies, statuses, len(requests[0]), time.perf_counter() - start)


async def open_loop(port: int, requests: list[list[str]], rate: float, seconds: float) -> dict:
    bodies = [body(r) for r in requests]
    latencies, statuses, idle, tasks = [], [], [], []
    rng = random.Random(0)
    start = time.perf_counter()

    async def one(i: int, due: float):
        connection = idle.pop() if idle else await Connection.open(port)
        status, _ = await connection.post(b"/v1/embeddings", bodies[i % len(bodies)], port)
        latencies.append(time.perf_counter() - due)
        statuses.append(status)
        idle.append(connection)

    due, i = start, 0
    while due < start + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
        due += rng.expovariate(rate)
        i += 1
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.writer.close()
    return {"offered_per_s": rate, **summarize(latencies, statuses, len(requests[0]), time.perf_counter() - start)}


def rss_sampler(pid: int, samples: list, stop: threading.Event):
    while not stop.wait(1.0):
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        samples.append(round(int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024, 1))


def in_process(folder: Path, requests: list[list[str]], seconds: float) -> dict:
    from e5np import E5Model
    model = E5Model(folder)
    model.encode(requests[0])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for r in requests:
            model.encode(r)
            done += len(r)
            if time.perf_counter() - start >= seconds:
                break
    return {"texts_per_s": done / (time.perf_counter() - start)}


def start_server(folder: Path, max_queue: int, *extra: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "e5np", "serve", "--model", str(folder), "--port", "0",
                                "--max-queue", str(max_queue), "--max-client-batch-size", str(min(max_queue, 2048)),
                                *extra], stderr=subprocess.PIPE, text=True)
    port = int(re.search(r":(\d+) ", process.stderr.readline()).group(1))
    import httpx
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        time.sleep(0.2)


class Server:
    """A server for one part of the run, its RSS sampled every second."""

    def __init__(self, folder: Path, max_queue: int, rss: list):
        self.process, self.port = start_server(folder, max_queue)
        self.stop = threading.Event()
        threading.Thread(target=rss_sampler, args=(self.process.pid, rss, self.stop), daemon=True).start()
        asyncio.run(closed_loop(self.port, [["warm up"]], 4, 2, None))  # not counted

    def close(self):
        self.stop.set()
        self.process.terminate()
        self.process.wait(60)


def bench_kind(folder: Path, kind: str, requests: list[list[str]], seconds: float) -> dict:
    from e5np import E5Model
    result = {"in_process": in_process(folder, requests, min(seconds, 20)), "rss_mib": [], "rss_open_mib": []}
    expected = E5Model(folder).encode(requests[0])
    mismatches = []

    def check(texts, reply):
        if not np.array_equal(decode(reply), expected):
            mismatches.append(texts)

    server = Server(folder, 4096, result["rss_mib"])
    try:
        result["closed"] = {}
        for c in CONCURRENCY:
            result["closed"][c] = asyncio.run(closed_loop(server.port, requests, c, seconds, check))
            print(f"{kind} closed c={c}: {result['closed'][c]}", file=sys.stderr, flush=True)
    finally:
        server.close()
    capacity = max(r["requests_per_s"] for r in result["closed"].values())
    result["max_queue_open"] = max(len(requests[0]), round(2 * result["in_process"]["texts_per_s"]))
    server = Server(folder, result["max_queue_open"], result["rss_open_mib"])
    try:
        result["open"] = {}
        for factor in OPEN_LOOP:
            result["open"][factor] = asyncio.run(open_loop(server.port, requests, factor * capacity, seconds))
            print(f"{kind} open {factor}x: {result['open'][factor]}", file=sys.stderr, flush=True)
    finally:
        server.close()
    result["replies_equal_encode"] = not mismatches
    return result


def table(results: dict) -> str:
    lines = [f"CPU: {results['cpu']}; model {results['model']}; {results['date']}; {results['seconds']} s a level; "
             "OpenAI /v1/embeddings, base64", "",
             "| request | load | requests/s | texts/s | vs in-process | p50 ms | p95 ms | p99 ms | non-2xx (429) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, r in results["kinds"].items():
        base = r["in_process"]["texts_per_s"]
        lines.append(f"| {kind} | in-process encode, one request at a time | | {base:.1f} | 1.00x | | | | |")
        rows = [(f"closed, concurrency {c}", x) for c, x in r["closed"].items()]
        rows += [(f"open, {f}x capacity ({x['offered_per_s']:.1f}/s), --max-queue {r['max_queue_open']}", x)
                 for f, x in r["open"].items()]
        for label, x in rows:
            lines.append(f"| {kind} | {label} | {x['requests_per_s']:.1f} | {x['texts_per_s']:.1f} | "
                         f"{x['texts_per_s'] / base:.2f}x | {x['p50_ms']:.1f} | {x['p95_ms']:.1f} | {x['p99_ms']:.1f} | "
                         f"{x['non_2xx']} ({x['status_429']}) |")
        for label, rss in (("closed", r["rss_mib"]), ("open", r["rss_open_mib"])):
            lines.append(f"| {kind} | server RSS, {label} loop (MiB) | first {rss[0]:.0f}, max {max(rss):.0f}, "
                         f"last {rss[-1]:.0f} | | | | | | |")
        lines.append(f"| {kind} | replies equal to encode, bit for bit | {r['replies_equal_encode']} | | | | | | |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--kinds", nargs="*", default=["1 query", "32 passages"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve-load")
    args = parser.parse_args()
    if args.model is None:
        import make_fixtures
        args.model = make_fixtures.minilm()
    from e5np.runtime import cpuinfo
    kinds = request_kinds(args.model)
    results = {"cpu": f"{cpuinfo('model name')}, {os.cpu_count()} vCPUs", "model": args.model.name,
               "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": args.seconds,
               "kinds": {k: bench_kind(args.model, k, kinds[k], args.seconds) for k in args.kinds}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    args.out.with_suffix(".md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
