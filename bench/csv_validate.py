"""Catalog validation speed: plain polars read vs validate_csv's pipeline vs a row-by-row baseline.

    python bench/csv_validate.py [--rows 1000000]

Generates a marketplace CSV (deterministic seed, ~5% defective rows of several kinds) in
bench/out/, then in one run times: polars.read_csv of the file; the validation pipeline with
the mercado_livre ruleset; and a pandas iterrows() loop like the old system's on a
100,000-row slice, scaled to the full file. The read and the validation each run three times
in fresh child processes (best time, peak RSS of each).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

OUT = Path(__file__).resolve().parent / "out"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """~5% of rows get one defect: bad price, long title, bad GTIN, bad condition, bad stock or
    a SKU that repeats the previous row's."""
    rng = pl.int_range(0, rows, eager=True)
    df = pl.DataFrame({"i": rng}).with_columns(
        sku=pl.format("SKU-{}", pl.col("i")),
        title=pl.format("Produto de teste numero {}", pl.col("i")),
        price=pl.format("{},{}", (pl.col("i") % 900 + 10), pl.lit("90")),
        stock=(pl.col("i") % 50).cast(pl.String),
        gtin=pl.lit("7891234567895"),
        condition=pl.lit("new"),
        category_id=pl.format("MLB{}", pl.col("i") % 5000),
        pictures=pl.lit("https://img.example/a.jpg|https://img.example/b.jpg"),
    )
    defect = pl.col("i").hash(seed) % 120
    df = df.with_columns(
        price=pl.when(defect == 0).then(pl.lit("-1")).otherwise("price"),
        title=pl.when(defect == 1).then(pl.lit("T" * 80)).otherwise("title"),
        gtin=pl.when(defect == 2).then(pl.lit("7891234567890")).otherwise("gtin"),
        condition=pl.when(defect == 3).then(pl.lit("broken")).otherwise("condition"),
        stock=pl.when(defect == 4).then(pl.lit("many")).otherwise("stock"),
        sku=pl.when(defect == 5).then(pl.format("SKU-{}", pl.col("i") - 1)).otherwise("sku"),
    ).drop("i")
    df.write_csv(path, separator=";")


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def validate_in_child(path: Path) -> tuple[dict[str, object], float, int]:
    """Run the validation in a fresh process so its peak RSS is its own."""
    args = [sys.executable, __file__, "--child", str(path)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data, float(data["seconds"]), int(data["rss_kb"])


def read_in_child(path: Path) -> tuple[float, int]:
    """polars.read_csv in a fresh process too: both sides start cold, as a worker's job does."""
    code = (
        "import polars as pl, resource, sys, time; t = time.perf_counter();"
        "pl.read_csv(sys.argv[1], separator=';', infer_schema=False);"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    seconds, rss_kb = out.stdout.split()
    return float(seconds), int(rss_kb)


def child(path: Path) -> None:
    from jobrunner.pipelines.validation.rules import load_ruleset
    from jobrunner.pipelines.validation.run import validate_csv_file

    ruleset = load_ruleset("default", "mercado_livre")
    started = time.perf_counter()
    result = validate_csv_file(path, ruleset=ruleset, report_path=OUT / "report.csv")
    seconds = time.perf_counter() - started
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = {
        "seconds": seconds,
        "rss_kb": rss_kb,
        "total": result.total_rows,
        "invalid": result.invalid_rows,
        "by_code": result.errors_by_code,
    }
    print(json.dumps(summary))


def warm(path: Path, rounds: int = 5) -> tuple[float, float]:
    """Both again in this one process after a warm-up, alternating, as in a long-lived worker
    whose allocator and thread pool earlier jobs have warmed: the best time of each."""
    from jobrunner.pipelines.validation.rules import load_ruleset
    from jobrunner.pipelines.validation.run import validate_csv_file

    ruleset = load_ruleset("default", "mercado_livre")

    def read() -> object:
        return pl.read_csv(path, separator=";", infer_schema=False)

    def validate() -> object:
        return validate_csv_file(path, ruleset=ruleset, report_path=OUT / "report.csv")

    read(), validate()
    reads, validations = [], []
    for _ in range(rounds):
        reads.append(timed(read)[1])
        validations.append(timed(validate)[1])
    return min(reads), min(validations)


def baseline(path: Path, rows: int) -> float:
    """The old way: pandas, one Python call per row and rule."""
    import pandas as pd  # only the bench needs pandas; not a project dependency

    df = pd.read_csv(path, sep=";", dtype=str, nrows=rows, keep_default_na=False)
    cat = re.compile(r"^ML[A-Z][0-9]+$")
    url = re.compile(r"^https?://\S+$")
    seen: set[str] = set()
    errors = 0
    for _, row in df.iterrows():
        errors += row["sku"] in seen
        seen.add(row["sku"])
        errors += not (3 <= len(row["title"]) <= 60)
        try:
            errors += float(row["price"].replace(".", "").replace(",", ".")) <= 0
        except ValueError:
            errors += 1
        errors += not row["stock"].isdigit()
        digits = row["gtin"].zfill(14)
        total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
        errors += (10 - total % 10) % 10 != int(digits[13])
        errors += row["condition"].lower() not in ("new", "used", "refurbished")
        errors += not cat.match(row["category_id"])
        pics = [p for p in re.split(r"[|;,]", row["pictures"]) if p.strip()]
        errors += len(pics) > 10 or not all(url.match(p.strip()) for p in pics)
    return float(errors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    OUT.mkdir(exist_ok=True)
    path = OUT / f"catalog_v2_{args.rows}.csv"  # v2: duplicate SKUs are a defect too
    if not path.exists():
        _, gen = timed(lambda: generate(path, args.rows))
        print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {gen:.1f}s")
    # best of three for both, each in a fresh process: the machine's noise is not the
    # pipeline's speed, and neither side gets memory or threads warmed up by the other
    reads = [read_in_child(path) for _ in range(3)]
    read_s, read_rss_kb = min(r[0] for r in reads), max(r[1] for r in reads)
    runs = [validate_in_child(path) for _ in range(3)]
    result = runs[0][0]
    validate_s = min(r[1] for r in runs)
    rss_kb = max(r[2] for r in runs)
    warm_read_s, warm_validate_s = warm(path)
    _, base_s = timed(lambda: baseline(path, args.baseline_rows))
    base_full = base_s * args.rows / args.baseline_rows
    print(f"rows={result['total']} invalid={result['invalid']} errors_by_code={result['by_code']}")
    print("cold: best of 3 runs each, every run in a fresh process")
    print(f"  polars.read_csv         {read_s:6.2f}s  {args.rows / read_s:12,.0f} rows/s")
    print(
        f"  validate (mercado_livre){validate_s:6.2f}s  {args.rows / validate_s:12,.0f} rows/s"
        f"  = {validate_s / read_s:.2f}x the plain read"
    )
    print("warm: best of 5 alternating runs in one process, after a warm-up")
    print(f"  polars.read_csv         {warm_read_s:6.2f}s  {args.rows / warm_read_s:12,.0f} rows/s")
    print(
        f"  validate (mercado_livre){warm_validate_s:6.2f}s"
        f"  {args.rows / warm_validate_s:12,.0f} rows/s"
        f"  = {warm_validate_s / warm_read_s:.2f}x the plain read"
    )
    print(
        f"pandas iterrows baseline {base_s:.2f}s on {args.baseline_rows:,} rows -> "
        f"{base_full:.1f}s scaled  {args.rows / base_full:10,.0f} rows/s"
    )
    print(f"speed-up over baseline {base_full / validate_s:.0f}x (cold validate)")
    print(
        f"peak RSS: validation {rss_kb / 1024:.0f} MB, plain read {read_rss_kb / 1024:.0f} MB"
        " (child processes, ru_maxrss)"
    )


if __name__ == "__main__":
    main()
