"""The long schemathesis run of issue 8: every /api/v1/ operation, many generated requests each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/api_fuzz.py --examples 100

It runs tests/test_api_fuzz.py::test_every_operation_answers_without_5xx_and_as_documented
with LEPTON_FUZZ_EXAMPLES set (`make test` runs the same test with 4 examples per operation):
a member's token, each call in its own rolled-back transaction, the checks no 5xx, documented
status code, documented content type and a body conforming to the schema. It prints the
number of examples, the wall time and pytest's verdict; a failure lists each operation with
its first failing case. There is no peer to compare with: this is a search for faults, not a
speed measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_api_fuzz.py::test_every_operation_answers_without_5xx_and_as_documented"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="generated requests per operation (default 100)")
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    # A long run spends the token's default 600 requests a minute: a throttled answer is documented
    # (429) and conforms, but it would hide what the operation itself answers.
    env = {**os.environ, "LEPTON_FUZZ_EXAMPLES": str(args.examples), "API_RATE_LIMIT": "100000/min"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", TEST], cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    verdict = "no failure" if result.returncode == 0 else f"FAILED (pytest exit {result.returncode})"
    print(f"api fuzz: up to {args.examples} examples per operation, {seconds:.0f} s, {verdict}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
