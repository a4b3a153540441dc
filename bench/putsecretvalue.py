"""PutSecretValue throughput and latency (16 concurrent durable writers): strongroom side by side with moto.

    .venv/bin/python bench/putsecretvalue.py

Each request carries its own ClientRequestToken, so every one creates a new version.
strongroom acknowledges a write only once it is on disk (SQLite WAL, synchronous=FULL);
moto keeps everything in memory. See docs/benchmarks.md.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], "put", __doc__.splitlines()[0]))
