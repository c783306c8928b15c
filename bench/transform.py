"""Benchmark the orders transform against the classic pandas approach, each run in a fresh process.

    .venv/bin/python bench/transform.py [--sizes 100,1000] [--skip-pandas] [--no-key] [--repeat 1]

Dirty order files of each size (MB) are generated once with feedline.sample and cached in bench/out/.
Every run is a child process reaped with os.wait4, so its CPU time and peak RSS are its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
ORDERS = REPO / "feeds" / "orders.yaml"
BYTES_PER_ROW = 89.3  # what feedline.sample writes on average; files land within ~1% of the size asked


@dataclass
class Run:
    engine: str
    size_mb: int
    bytes_in: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    rows_in: int
    rows_out: int

    @property
    def mb_per_s(self) -> float:
        return self.bytes_in / 1e6 / self.seconds


def sample_file(size_mb: int) -> tuple[Path, dict[str, Any]]:
    """The cached dirty file of about `size_mb` MB and its SampleStats, generated on first use."""
    from feedline.sample import write_orders_csv

    path, meta = OUT / f"orders_{size_mb}mb.csv", OUT / f"orders_{size_mb}mb.json"
    if not (path.exists() and meta.exists()):
        started = time.perf_counter()
        stats = write_orders_csv(path, rows=int(size_mb * 1e6 / BYTES_PER_ROW), seed=42)
        took = time.perf_counter() - started
        meta.write_text(
            json.dumps({**asdict(stats), "clean": stats.clean, "generated_seconds": round(took, 1)})
        )
        print(
            f"generated {path.name}: {stats.bytes / 1e6:.0f} MB, {stats.rows} rows in {took:.1f}s", flush=True
        )
    return path, json.loads(meta.read_text())


def child_feedline(source: Path, out: Path, *, dedupe: bool = True) -> dict[str, Any]:
    from feedline.contract import load_feed
    from feedline.transform import transform_file

    feed = load_feed(ORDERS)
    if not dedupe:  # the same work without the one state that grows with the file: the primary-key set
        feed = feed.model_copy(update={"primary_key": ()})
    result = transform_file(feed, source, out / "clean.parquet", out / "rejected.parquet")
    return {"rows_in": result.rows_in, "rows_out": result.rows_out}


def child_pandas(source: Path, out: Path) -> dict[str, Any]:
    """The classic Lambda: read the whole file, clean column by column, drop failures and duplicates."""
    import pandas as pd

    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    rows_in = len(frame)
    tokens = ["", "null", "NULL", "None", "N/A", "n/a", "NA", "-"]
    text = {name: frame[name].str.strip() for name in frame.columns}
    text["order_id"] = text["order_id"].str.replace("#", "", regex=False)
    text["amount"] = text["amount"].str.replace(r"[$,]", "", regex=True)
    given = {
        name: ~values.isin(["", "unknown", "?"] if name == "status" else tokens)
        for name, values in text.items()
    }
    clean = pd.DataFrame(index=frame.index)
    clean["order_id"] = pd.to_numeric(text["order_id"].where(given["order_id"]), errors="coerce").astype(
        "Int64"
    )
    clean["customer_name"] = text["customer_name"].where(given["customer_name"])
    clean["customer_email"] = text["customer_email"].where(given["customer_email"]).str.lower()
    clean["country"] = text["country"].where(given["country"]).str.upper()
    amount = text["amount"].where(given["amount"])
    fits = amount.str.fullmatch(r"[+-]?\d{1,10}(\.\d{1,2})?")
    clean["amount"] = pd.to_numeric(amount.where(fits.fillna(False).astype(bool)), errors="coerce").round(2)
    quantity = pd.to_numeric(text["quantity"].where(given["quantity"]), errors="coerce")
    clean["quantity"] = quantity.where((quantity % 1 == 0) & (quantity.abs() < 2**31))
    clean["status"] = text["status"].where(given["status"]).str.lower()
    stamp = text["ordered_at"].where(given["ordered_at"])
    parsed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M", "%m-%d-%Y %H:%M"):
        parsed = parsed.fillna(pd.to_datetime(stamp, format=fmt, errors="coerce"))
    iso = pd.to_datetime(stamp, format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None)
    clean["ordered_at"] = parsed.fillna(iso)
    flags = {"true": True, "t": True, "yes": True, "y": True, "1": True}
    flags |= {"false": False, "f": False, "no": False, "n": False, "0": False}
    clean["is_gift"] = text["is_gift"].where(given["is_gift"]).str.lower().map(flags)
    failed = pd.Series(False, index=frame.index)
    for name in clean.columns:
        failed |= given[name] & clean[name].isna()
    failed |= clean[["order_id", "amount", "ordered_at"]].isna().any(axis=1)
    kept = clean[~failed].drop_duplicates(subset=["order_id"], keep="first")
    kept = kept.astype({"quantity": "Int32", "is_gift": "boolean"})
    kept.to_parquet(out / "clean.parquet", engine="pyarrow", compression="zstd", index=False)
    frame[failed].to_parquet(out / "rejected.parquet", engine="pyarrow", compression="zstd")
    return {"rows_in": rows_in, "rows_out": len(kept)}


def measure(engine: str, size_mb: int, source: Path) -> Run:
    """Run one engine on one file in a fresh process; CPU and peak RSS come from wait4 on that child."""
    out = OUT / f"run_{engine}_{size_mb}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", engine, str(source), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    printed = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{engine} on {source.name} failed with exit code {child.returncode}")
    counts = json.loads(printed.strip().splitlines()[-1])
    return Run(
        engine=engine,
        size_mb=size_mb,
        bytes_in=source.stat().st_size,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        rows_in=counts["rows_in"],
        rows_out=counts["rows_out"],
    )


def machine() -> str:
    import pandas
    import polars
    import pyarrow

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"nproc {os.cpu_count()}, Python {platform.python_version()}, polars {polars.__version__}, "
        f"pyarrow {pyarrow.__version__}, pandas {pandas.__version__}; load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000", help="file sizes in MB, comma-separated")
    parser.add_argument("--skip-pandas", action="store_true", help="run only the feedline transform")
    parser.add_argument(
        "--no-key", action="store_true", help="also run feedline without the primary key, to show flat memory"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine and size; the fastest is kept")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, source, out = args.child
        if engine == "pandas":
            counts = child_pandas(Path(source), Path(out))
        else:
            counts = child_feedline(Path(source), Path(out), dedupe=engine == "feedline")
        print(json.dumps(counts))
        return

    sys.path.insert(0, str(REPO / "src"))
    print(machine(), flush=True)
    engines = ["feedline", *(["no-key"] if args.no_key else []), *([] if args.skip_pandas else ["pandas"])]
    best: dict[tuple[str, int], Run] = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        source, stats = sample_file(size)
        for engine in engines:
            runs = [measure(engine, size, source) for _ in range(args.repeat)]
            for run in runs:
                print(
                    f"{engine:8s} {size:5d} MB  {run.seconds:7.2f} s  {run.mb_per_s:6.1f} MB/s  "
                    f"cpu {run.cpu_seconds:7.2f} s  peak RSS {run.peak_rss_mb:7.0f} MiB  "
                    f"rows {run.rows_in} -> {run.rows_out}",
                    flush=True,
                )
            if engine == "feedline" and runs[0].rows_out != stats["clean"]:
                raise SystemExit(
                    f"feedline wrote {runs[0].rows_out} rows, the sample promised {stats['clean']}"
                )
            best[engine, size] = min(runs, key=lambda r: r.seconds)
            if len(runs) > 1:
                median = statistics.median(r.seconds for r in runs)
                print(f"{engine:8s} {size:5d} MB  median {median:.2f} s over {len(runs)} runs", flush=True)
        if not args.skip_pandas:
            ours, theirs = best["feedline", size], best["pandas", size]
            throughput = ours.mb_per_s / theirs.mb_per_s
            cpu, rss = ours.cpu_seconds / theirs.cpu_seconds, ours.peak_rss_mb / theirs.peak_rss_mb
            print(
                f"ratio    {size:5d} MB  throughput x{throughput:.1f}  cpu x{cpu:.2f}  peak RSS x{rss:.2f}"
                " (feedline / pandas)",
                flush=True,
            )
    print(machine(), flush=True)


if __name__ == "__main__":
    main()
