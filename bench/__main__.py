"""`make bench`: run every bench module (bench/*.py with a `main()`), one after another.

`python -m bench protocol rows` runs only those."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str]) -> int:
    failed = []
    del sys.argv[1:]  # each bench reads its own arguments; run them with none
    for name in argv or modules():
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue  # a helper module (e.g. reference_pg)
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        try:
            run()
        except Exception as exc:  # one failing bench must not hide the others' figures
            failed.append(name)
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"== bench.{name}: {time.perf_counter() - started:.1f} s\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
