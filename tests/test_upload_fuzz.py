"""Crafted and mutated photos thrown at `/api/analyze` on a real server in its
own process: every one gets an answer (200, 413 or 415), the server lives,
and its peak memory stays bounded (a decompression bomb would not).

The server's peak resident memory (VmHWM) is read before and after the
throwing; the figures print with `-s`:

    pytest tests/test_upload_fuzz.py -s
"""

from __future__ import annotations

import collections
import random
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, demo_frame, jpeg_claiming, png_claiming, sof

SEED = 2026
# What the fuzzing may add to the server's peak, in MB: a 50 MP photo (the
# limit) decodes to 150 MB; a 12000x12000 bomb would take 430.
MAX_GROWTH_MB = 300

SERVER = """
import sys
from edge.config import RunConfig
from edge.web.hub import FrameHub
from edge.web.server import WebServer
config = RunConfig.model_validate({"output": {"display": "none"},
                                   "web": {"listen": "127.0.0.1:0", "max_upload_mb": 10}})
server = WebServer(config, FrameHub(), {"source": "fuzz"}).open()
print(server.port, flush=True)
sys.stdin.read()
server.close()
"""


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def seeds() -> dict[str, bytes]:
    face = demo_frame(40)[60:300, 200:440]  # a face and its surroundings
    return {
        kind: cv2.imencode(ext, face, params)[1].tobytes()
        for kind, ext, params in (
            ("jpeg", ".jpg", []),
            ("png", ".png", []),
            ("webp", ".webp", []),
            ("bmp", ".bmp", []),
        )
    }


def mutations(rng: random.Random, files: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """(kind, what was done, bytes): the attacks on headers first, then noise."""
    out = []
    jpeg = files["jpeg"]
    at = jpeg.index(b"\xff\xc0")
    for side in (16, 12000, 30000, 65000):
        big = jpeg_claiming(jpeg, side)
        out.append(("jpeg", f"frame header claims {side}x{side}", bytes(big)))
        for fills in (1, 2, 7):
            filled = bytes(big[:at]) + b"\xff" * fills + bytes(big[at:])
            out.append(("jpeg", f"{fills} fill bytes before a {side}x{side} frame", filled))
        out.append(("jpeg", f"a fake 16x16 frame, then {side}x{side}", jpeg[:at] + sof(16, 16)
                    + bytes(big[at:])))  # fmt: skip
        out.append(("jpeg", f"{side}x{side}, then a repeated 16x16 frame", bytes(big[: at + 19])
                    + sof(16, 16) + bytes(big[at + 19 :])))  # fmt: skip
    for width, height in ((20000, 20000), (1, 60000), (65535, 65535), (0, 10)):
        out.append(("png", f"header claims {width}x{height}", png_claiming(files["png"], width,
                    height)))  # fmt: skip
        bmp = bytearray(files["bmp"])
        bmp[18:22] = width.to_bytes(4, "little")
        bmp[22:26] = (-height).to_bytes(4, "little", signed=True)
        out.append(("bmp", f"header claims {width}x{height} top-down", bytes(bmp)))
    for kind, data in files.items():
        for _ in range(4):
            cut = rng.randrange(8, len(data))
            out.append((kind, f"truncated at {cut} of {len(data)}", data[:cut]))
        for _ in range(6):
            noisy = bytearray(data)
            for _ in range(rng.randrange(1, 6)):
                noisy[rng.randrange(2, min(len(data), 200))] = rng.randrange(256)
            out.append((kind, "bytes of the header changed", bytes(noisy)))
    return out


@pytest.fixture
def server():
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())
        yield proc, f"http://127.0.0.1:{port}/"
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def post(url: str, body: bytes, kind: str) -> int:
    request = urllib.request.Request(
        url + "api/analyze", data=body, headers={"Content-Type": f"image/{kind}"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_mutated_photos_all_get_an_answer_in_bounded_memory(server):
    proc, url = server
    files = seeds()
    for kind, data in files.items():  # the models load on the first: part of the baseline
        assert post(url, data, kind) == 200, kind
    before = peak_mb(proc.pid)
    answers: collections.Counter = collections.Counter()
    for kind, what, data in mutations(random.Random(SEED), files):
        status = post(url, data, kind)
        assert status in (200, 413, 415), (kind, what, status)
        assert proc.poll() is None, f"the server died on {kind}: {what}"
        answers[status] += 1
    after = peak_mb(proc.pid)
    print(
        f"\nfuzz: {sum(answers.values())} files, answers {dict(sorted(answers.items()))}; "
        f"server peak RSS {before:.0f} MB before, {after:.0f} MB after (+{after - before:.0f})"
    )
    assert after - before < MAX_GROWTH_MB
    assert answers[413] >= 8  # the bombs were seen as such, not decoded
    # and it still works
    assert post(url, files["jpeg"], "jpeg") == 200


def test_the_fuzz_bombs_would_take_the_memory_they_claim():
    """The check above can fail: OpenCV really decodes the 12000x12000 frame
    header to a full-size picture when nothing checks it first."""
    big = jpeg_claiming(seeds()["jpeg"], 12000)
    image = cv2.imdecode(np.frombuffer(big, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (12000, 12000)  # 432 MB from a small file
