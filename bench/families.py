"""Model-family detection cost: 200 header-only model files (the 20 of the mixed-folder test, ten times
each, real tensor names and shapes, sparse data), classified with an empty cache (cold: every header
read and parsed; the OS page cache holds the files after the first round) and again (warm: a stat and
a cache hit per file).

    python bench/families.py [--files 200] [--rounds 5] [--tensors 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp_bridge.specs.families import detect  # noqa: E402
from tests.unit import model_headers as mh  # noqa: E402
from tests.unit.test_family_detection import MIXED  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--tensors",
        type=int,
        default=0,
        help="pad each header to this many tensors (a real SDXL checkpoint "
        "has ~2,500, Flux.1 ~780; the fixtures carry only the tensors detection reads and their neighbours)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        kinds = list(MIXED.items())
        for n in range(args.files):
            name, (shapes, _, _) = kinds[n % len(kinds)]
            pad = {f"filler.{i}.linear.weight": [64, 64] for i in range(max(0, args.tensors - len(shapes)))}
            shapes = {**shapes, **pad}
            paths.append(mh.write_header_only(Path(tmp) / f"{n:03d}_{Path(name).name}", shapes))
        header_bytes = sum(int.from_bytes(p.open("rb").read(8), "little") for p in paths)
        cold, warm = [], []
        for _ in range(args.rounds):
            detect.clear_cache()
            start = time.perf_counter()
            found = [detect.detect_file(p) for p in paths]
            cold.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            for p in paths:
                detect.detect_file(p)
            warm.append((time.perf_counter() - start) * 1000)
        unknown = sum(f.role == "unknown" for f in found)
        print(f"{args.files} files, {header_bytes / 1e6:.1f} MB of headers, {unknown} unknown")
        print(f"cold: median {statistics.median(cold):.1f} ms, max {max(cold):.1f} ms (goal < 200)")
        print(f"warm: median {statistics.median(warm):.2f} ms, max {max(warm):.2f} ms (goal < 5)")


if __name__ == "__main__":
    main()
