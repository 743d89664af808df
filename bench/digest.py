"""Benchmark of the one-pass content digest: trilha's sha256+md5 against plain hashlib.

Every byte that enters the lake is hashed once, sha256 and md5 from the same pass
(:func:`trilha.domain.digest.digest_stream`). This measures what that costs next to plain hashlib loops over
the same bytes:

* ``generate only``: reading the generated stream without hashing (the floor every method pays);
* ``hashlib sha256``: one pass, sha256 only (what a single digest would cost);
* ``hashlib sha256+md5, 1 loop``: one pass updating both, the reference the ratio is taken against;
* ``hashlib sha256, then md5``: two passes (the stream is generated twice: bytes are never kept);
* ``trilha digest_stream``: the product's path, through its ``read(n)`` streaming API.

The stream is generated lazily in 8 MiB chunks (``CHUNK_SIZE``): deterministic bytes (a seeded base
block with the chunk number written into every chunk), never held whole in memory. Each method runs in
a fresh child process so that its peak RSS (``ru_maxrss``) is its own. The target is a ratio of at
least 0.8x against the single-loop hashlib reference.

    .venv/bin/python bench/digest.py                 # 1 GiB
    .venv/bin/python bench/digest.py --size-mib 256  # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable

from trilha.domain.digest import CHUNK_SIZE, Digest, digest_stream

MIB = 1024 * 1024
TARGET_RATIO = 0.8


class GeneratedStream:
    """``size`` deterministic bytes served by ``read(n)``, generated chunk by chunk."""

    def __init__(self, size: int, seed: int = 2024) -> None:
        self.size = size
        self.pos = 0
        self._base = random.Random(seed).randbytes(CHUNK_SIZE)
        self._chunk = b""
        self._chunk_index = -1

    def _chunk_at(self, index: int) -> bytes:
        if index != self._chunk_index:
            # Each chunk differs from the others (its index in the first 8 bytes): no repeated content.
            self._chunk = index.to_bytes(8, "big") + self._base[8:]
            self._chunk_index = index
        return self._chunk

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        index, offset = divmod(self.pos, CHUNK_SIZE)
        if offset == 0 and n == CHUNK_SIZE:
            data = self._chunk_at(index)  # the common case: a whole chunk, no copy
        else:
            parts = []
            remaining, pos = n, self.pos
            while remaining:
                index, offset = divmod(pos, CHUNK_SIZE)
                piece = self._chunk_at(index)[offset : offset + remaining]
                parts.append(piece)
                pos += len(piece)
                remaining -= len(piece)
            data = b"".join(parts)
        self.pos += len(data)
        return data


def _generate_only(size: int) -> str:
    stream = GeneratedStream(size)
    total = 0
    while chunk := stream.read(CHUNK_SIZE):
        total += len(chunk)
    return str(total)


def _sha256_only(size: int) -> str:
    stream = GeneratedStream(size)
    sha = hashlib.sha256()
    while chunk := stream.read(CHUNK_SIZE):
        sha.update(chunk)
    return sha.hexdigest()


def _sha256_md5_one_loop(size: int) -> str:
    stream = GeneratedStream(size)
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    while chunk := stream.read(CHUNK_SIZE):
        sha.update(chunk)
        md5.update(chunk)
    return f"{sha.hexdigest()}/{md5.hexdigest()}"


def _sha256_then_md5(size: int) -> str:
    sha = hashlib.sha256()
    stream = GeneratedStream(size)
    while chunk := stream.read(CHUNK_SIZE):
        sha.update(chunk)
    md5 = hashlib.md5(usedforsecurity=False)
    stream = GeneratedStream(size)
    while chunk := stream.read(CHUNK_SIZE):
        md5.update(chunk)
    return f"{sha.hexdigest()}/{md5.hexdigest()}"


def _trilha(size: int) -> str:
    digest: Digest = digest_stream(GeneratedStream(size))
    assert digest.size == size
    return f"{digest.sha256}/{digest.md5}"


METHODS: dict[str, tuple[str, Callable[[int], str]]] = {
    "generate": ("generate only (no hashing)", _generate_only),
    "sha256": ("hashlib sha256 (1 pass)", _sha256_only),
    "both_loop": ("hashlib sha256+md5, 1 loop", _sha256_md5_one_loop),
    "two_pass": ("hashlib sha256, then md5 (2 passes)", _sha256_then_md5),
    "trilha": ("trilha digest_stream sha256+md5", _trilha),
}


def run_child(method: str, size: int) -> None:
    """In the child: time one method, print seconds, peak RSS and the result as JSON."""
    _, func = METHODS[method]
    start = time.perf_counter()
    result = func(size)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "result": result}))


def measure(method: str, size: int, repeat: int) -> dict[str, float | str]:
    """Best of ``repeat`` fresh child processes (the least disturbed run)."""
    best: dict[str, float | str] | None = None
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", method, "--size-mib", str(size // MIB)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        res = json.loads(out.strip().splitlines()[-1])
        if best is None or res["seconds"] < best["seconds"]:
            best = res
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="stream size in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the best is kept")
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    if args.child:
        run_child(args.child, size)
        return 0

    results = {m: measure(m, size, args.repeat) for m in METHODS}
    # The same bytes must give the same digests, whatever the method.
    assert results["trilha"]["result"] == results["both_loop"]["result"] == results["two_pass"]["result"]
    assert str(results["trilha"]["result"]).startswith(str(results["sha256"]["result"]))
    reference = size / float(results["both_loop"]["seconds"])

    print(
        f"digest benchmark: {args.size_mib} MiB generated lazily in {CHUNK_SIZE // MIB} MiB chunks, "
        f"best of {args.repeat}, each method in a fresh process"
    )
    header = f"{'method':38s} {'MiB/s':>9s} {'seconds':>8s} {'peak RSS MiB':>13s} {'vs 1-loop':>9s}"
    print(header)
    print("-" * len(header))
    for method, (label, _) in METHODS.items():
        res = results[method]
        rate = size / float(res["seconds"])
        print(
            f"{label:38s} {rate / MIB:9.0f} {float(res['seconds']):8.2f} "
            f"{float(res['peak_rss_mib']):13.1f} {rate / reference:8.2f}x"
        )
    ratio = (size / float(results["trilha"]["seconds"])) / reference
    verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(
        f"\ntrilha one-pass vs hashlib sha256+md5 single loop: {ratio:.2f}x "
        f"(target >= {TARGET_RATIO}x): {verdict}"
    )
    print(f"sha256 {str(results['trilha']['result']).split('/')[0]}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
