"""CPU cost of catalog validation against a plain read, counted in instructions (callgrind).

    python bench/csv_instructions.py [--rows 1000000]

Wall-clock ratios on a shared 2-core VM swing by a third from one minute to the next;
instruction counts do not. Each side runs single-threaded under ``valgrind --tool=callgrind``
(POLARS_MAX_THREADS=1) on the file bench/csv_validate.py generates, and the instructions of a
run that only imports and sets up are subtracted. This measures work, not parallelism: on
more cores the wall-clock ratio is lower when validation parallelises better than the read.
Needs valgrind on PATH; takes a few minutes at 1M rows.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from csv_validate import OUT, generate  # noqa: E402  (the same generated file)


def child(mode: str, path: Path) -> None:
    import polars as pl

    from jobrunner.pipelines.validation.rules import load_ruleset
    from jobrunner.pipelines.validation.run import validate_csv_file

    ruleset = load_ruleset("default", "mercado_livre")
    if mode == "read":
        pl.read_csv(path, separator=";", infer_schema=False)
    elif mode == "validate":
        validate_csv_file(path, ruleset=ruleset, report_path=OUT / "report.csv")


def instructions(mode: str, path: Path) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        mode,
        str(path),
    ]
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    OUT.mkdir(exist_ok=True)
    path = OUT / f"catalog_v2_{args.rows}.csv"
    if not path.exists():
        generate(path, args.rows)
    setup = instructions("setup", path)
    read = instructions("read", path) - setup
    validate = instructions("validate", path) - setup
    print(f"rows={args.rows} single-threaded, instructions beyond imports and setup")
    print(f"polars.read_csv           {read / 1e6:10,.0f} M")
    print(f"validate (mercado_livre)  {validate / 1e6:10,.0f} M  = {validate / read:.2f}x the read")


if __name__ == "__main__":
    main()
