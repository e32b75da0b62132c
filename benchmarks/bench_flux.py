"""How fast the offline Flux reproduction is on registry-sized inputs. Run: .venv/bin/python benchmarks/bench_flux.py

Prints figures only; nothing here is asserted (see the brief: targets are measured, not tested).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from image_tagger.fluxrules import policy, setters, standard

MARKED = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
spec:
  template:
    spec:
      containers:
        - name: app
          image: docker.io/acme/app:1.0.0 # {{"$imagepolicy": "flux-system:app-production"}}
"""


def tags(count: int) -> list[str]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        if i % 3:
            out.append(f"main-{rng.getrandbits(28):07x}-{1764000000 + i}")
        else:
            out.append(f"{rng.randrange(4)}.{rng.randrange(50)}.{rng.randrange(50)}")
    return out


def measure(label: str, fn) -> None:
    """Time a clean run, then trace a second run for peak memory (tracing slows Python several times)."""
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<48} {seconds * 1000:9.1f} ms  peak {peak / 2**20:7.2f} MiB  -> {result}")


def main() -> None:
    for count in (1_000, 10_000, 100_000):
        stored = policy.scan_tags(tags(count))
        measure(
            f"release policy 1.x over {count} tags", lambda s=stored: policy.select_tag(standard.release_policy(1), s)
        )
        measure(f"main-build policy over {count} tags", lambda s=stored: policy.select_tag(standard.branch_policy(), s))
        measure(f"exclusion scan of {count} tags", lambda c=count: len(policy.scan_tags(tags(c))))
    root = Path(tempfile.mkdtemp(prefix="bench-setters-"))
    try:
        for i in range(1_000):
            (root / f"app-{i}.yaml").write_text(MARKED.format(i=i))
        refs = {"flux-system:app-production": setters.ImageRef("docker.io/acme/app", "1.4.2")}
        measure("setters over 1000 marked files", lambda: len(setters.plan_updates(root, refs)))
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
