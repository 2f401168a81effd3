"""Latency of one small ``Predictor.predict`` against a local endpoint, versus a bare HTTP round trip.

Why: the target is that a prediction on a local endpoint costs at most 3x a bare loopback HTTP round trip
made with the same client library. What sluice adds shows up here: the serializer and deserializer, the
Runtime wire path, uvicorn + starlette, the hop to a handler thread, and the default CSV input_fn and JSON
output_fn around a trivial model (``inference.py``: ``model_fn`` returns an object whose ``predict`` sums
each row). The endpoint runs as deployed: one instance, in the bubblewrap sandbox when it is available.

Baseline: a minimal keep-alive HTTP/1.1 responder (raw asyncio, a fixed small JSON body) in its own
process on loopback, asked with ``http.client`` — the library :class:`sluice.predictor.Predictor` uses —
over one kept-alive connection, with the same request body and headers. The two are measured in
alternating blocks so machine drift hits both, and the medians compared.

Usage: ``python bench/endpoint_latency.py [--requests 1000] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import os
import pstats
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from _benchutil import fresh_home, median, remove_tree, result_line

NAME = "endpoint_latency"
TARGET = 3.0  # predict median / bare round-trip median, at most
BLOCK = 100

INFERENCE_PY = b'''
class RowSum:
    def predict(self, data):
        return data.sum(axis=1)


def model_fn(model_dir):
    return RowSum()
'''

# A minimal HTTP/1.1 keep-alive responder: parse headers and Content-Length, answer a fixed body.
RESPONDER = r'''
import asyncio, sys
BODY = b"[6.0]"
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)

class Responder(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            self.transport.write(REPLY)

async def main():
    server = await asyncio.get_running_loop().create_server(Responder, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
'''


def model_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(INFERENCE_PY)
        tar.addfile(info, io.BytesIO(INFERENCE_PY))
    return buf.getvalue()


def deploy(name: str) -> object:
    """Record a Model, deploy it on one instance, and return a Predictor (CSV in, JSON out)."""
    from sluice.deserializers import JSONDeserializer
    from sluice.predictor import Predictor
    from sluice.serializers import CSVSerializer
    from sluice.serving.endpoints import deploy_endpoint
    from sluice.session import Session

    session = Session()
    uri = session.upload_string_as_file_body(model_tar(), session.default_bucket(), f"bench/{name}/model.tar.gz")
    session.metadata.create_resource("Model", name, {
        "ModelName": name, "CreationTime": time.time(),
        "PrimaryContainer": {"Image": "local", "ModelDataUrl": uri,
                             "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                             "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}},
    })
    start = time.perf_counter()
    record = deploy_endpoint(name, name, 1, "ml.m5.large", session.config)
    print(f"  deploy_endpoint: {time.perf_counter() - start:.2f} s (sandbox: {record['Local']['Sandbox']})")
    return Predictor(name, session, serializer=CSVSerializer(), deserializer=JSONDeserializer())


def start_responder() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", RESPONDER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def bare_client(port: int) -> object:
    """One kept-alive http.client connection sending what the Predictor sends."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "text/csv", "Accept": "application/json", "Content-Length": "5"}

    def round_trip() -> bytes:
        conn.request("POST", "/endpoints/bench/invocations", body=b"1,2,3", headers=headers)
        return conn.getresponse().read()

    return round_trip


def measure(predict: object, bare: object, requests: int) -> tuple[list[float], list[float]]:
    """Alternate blocks of predictions and bare round trips; per-request seconds of each."""
    clock = time.perf_counter
    ours: list[float] = []
    base: list[float] = []
    row = [1, 2, 3]
    for _ in range(max(1, requests // BLOCK)):
        for _ in range(BLOCK):
            t = clock()
            predict(row)  # type: ignore[operator]
            ours.append(clock() - t)
        for _ in range(BLOCK):
            t = clock()
            bare()  # type: ignore[operator]
            base.append(clock() - t)
    return ours, base


def spread_us(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"median {median(values) * 1e6:6.0f} us, p10 {ordered[len(ordered) // 10] * 1e6:.0f} us, "
            f"p90 {ordered[len(ordered) * 9 // 10] * 1e6:.0f} us")


def httpx_pair(url: str, port: int, requests: int) -> tuple[float, float]:
    """Medians of the same request made with httpx: to the endpoint's Runtime path, and to the responder."""
    import httpx

    headers = {"Content-Type": "text/csv", "Accept": "application/json"}
    with httpx.Client() as client:
        targets = (f"{url}/endpoints/bench/invocations", f"http://127.0.0.1:{port}/endpoints/bench/invocations")
        out = []
        for target in targets:
            for _ in range(50):
                client.post(target, content=b"1,2,3", headers=headers)
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                client.post(target, content=b"1,2,3", headers=headers).read()
                times.append(time.perf_counter() - t)
            out.append(median(times))
    return out[0], out[1]


def server_side(url: str, requests: int) -> float:
    """Median of a bare http.client POST straight to the endpoint's /invocations (no Predictor serde)."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    headers = {"Content-Type": "text/csv", "Accept": "application/json"}
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        conn.request("POST", "/invocations", body=b"1,2,3", headers=headers)
        conn.getresponse().read()
        times.append(time.perf_counter() - t)
    conn.close()
    return median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="predictions (and bare round trips) to time")
    parser.add_argument("--profile", action="store_true", help="print a client-side cProfile even on a PASS")
    args = parser.parse_args()

    home = fresh_home(NAME)
    responder = None
    predictor = None
    try:
        predictor = deploy("bench")
        responder, port = start_responder()
        bare = bare_client(port)
        predict = predictor.predict  # type: ignore[attr-defined]
        assert predict([1, 2, 3]) == [6.0], predict([1, 2, 3])
        measure(predict, bare, 2 * BLOCK)  # warm-up: connections, caches, the handler thread
        ours, base = measure(predict, bare, args.requests)
        ratio = median(ours) / median(base)
        url = predictor.sagemaker_session.metadata.get_resource(  # type: ignore[attr-defined]
            "Endpoint", "bench").record["Local"]["Url"]
        direct = server_side(url, args.requests)
        print(f"  predict:        {spread_us(ours)}  ({len(ours)} requests: Predictor, CSV in, JSON out)")
        print(f"  bare HTTP:      {spread_us(base)}  (raw asyncio responder, http.client, same request)")
        print(f"  /invocations:   median {direct * 1e6:6.0f} us  (http.client POST straight to the worker, no serde)")
        hx_ours, hx_base = httpx_pair(url, port, args.requests // 2)
        print(f"  for reference, httpx as the client: endpoint {hx_ours * 1e6:.0f} us, bare {hx_base * 1e6:.0f} us, "
              f"ratio {hx_ours / hx_base:.2f} (httpx's own cost is in both)")
        print(f"  machine: {socket.gethostname()}, {len(os.sched_getaffinity(0))} CPUs")
        if args.profile or ratio > TARGET:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.requests):
                predict([1, 2, 3])
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(14)
            print("  ---- client-side profile of predict (by own time):")
            print("\n".join("  " + line for line in out.getvalue().splitlines() if line.strip()))
        print(result_line(NAME, ratio, "<=", TARGET))
        return 0
    finally:
        if responder is not None:
            responder.terminate()
            responder.wait()
        if predictor is not None:
            from sluice.serving.endpoints import delete_endpoint

            delete_endpoint("bench")
        remove_tree(Path(home))


if __name__ == "__main__":
    sys.exit(main())
