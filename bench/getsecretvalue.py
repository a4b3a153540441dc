"""GetSecretValue throughput and latency: strongroom side by side with moto.

    .venv/bin/python bench/getsecretvalue.py            # or: make bench
    .venv/bin/python bench/getsecretvalue.py --ops get,put --rounds 3

See docs/benchmarks.md for the method and the latest figures.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], "get", __doc__.splitlines()[0]))
