"""Benchmark the orders transform against the classic pandas approach, each run in a fresh process.

    .venv/bin/python bench/transform.py [--sizes 100,1000] [--skip-pandas] [--no-key] [--keep-last]
                                        [--repeat 1] [--baseline GIT_REV] [--instructions]

Dirty order files of each size (MB) are generated once with feedline.sample and cached in bench/out/.
Every run is a child process reaped with os.wait4, so its CPU time and peak RSS are its own; the child also
reports the CPU time of the transform call alone (process_time, all threads), printed as µs per row.
`--baseline REV` adds the feedline of that git revision (its src/ exported with `git archive`) as one more
engine, run interleaved with the current code on the same file: on a shared machine, compare the two
within one run (CPU µs/row is steadier than wall time). `--instructions` counts instructions per row under
valgrind instead (deterministic whatever the load; ~2 minutes per engine for --sizes 10).
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
ORDERS = REPO / "feeds" / "orders.yaml"
BYTES_PER_ROW = 89.3  # what feedline.sample writes on average; files land within ~1% of the size asked
BASELINE_SRC = "FEEDLINE_BENCH_BASELINE_SRC"
"""Environment variable naming the exported src/ folder the `baseline` engine imports feedline from."""
TRANSFORMS = "FEEDLINE_BENCH_TRANSFORMS"
"""Environment variable: how many times a feedline child transforms its file (for `--instructions`)."""
COLLECTED = re.compile(r"Collected : (\d+)")


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
    transform_cpu_seconds: float | None = None

    @property
    def mb_per_s(self) -> float:
        return self.bytes_in / 1e6 / self.seconds

    @property
    def cpu_us_per_row(self) -> float | None:
        """CPU time of the transform call alone (imports excluded), per input row."""
        if self.transform_cpu_seconds is None or not self.rows_in:
            return None
        return self.transform_cpu_seconds / self.rows_in * 1e6


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


def child_feedline(source: Path, out: Path, *, dedupe: bool = True, keep: str = "first") -> dict[str, Any]:
    from feedline.contract import Dedupe, load_feed
    from feedline.transform import transform_file

    feed = load_feed(ORDERS)
    if not dedupe:  # the same work without the one state that grows with the file: the primary-key set
        feed = feed.model_copy(update={"primary_key": ()})
    feed = feed.model_copy(update={"dedupe": Dedupe(keep)})
    started = time.process_time()
    for _ in range(int(os.environ.get(TRANSFORMS, "1"))):
        result = transform_file(feed, source, out / "clean.parquet", out / "rejected.parquet")
    cpu = time.process_time() - started
    return {"rows_in": result.rows_in, "rows_out": result.rows_out, "transform_cpu_seconds": cpu}


def export_baseline(rev: str) -> Path:
    """The src/ folder of git revision `rev`, exported to a temporary folder (the checkout is not touched)."""
    target = Path(tempfile.mkdtemp(prefix="feedline-baseline-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        message = archive.stderr.decode(errors="replace").strip()
        raise SystemExit(
            f"--baseline {rev}: git archive failed ({message}); give a commit of this repository"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


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


def measure(engine: str, size_mb: int, source: Path, env: dict[str, str] | None = None) -> Run:
    """Run one engine on one file in a fresh process; CPU and peak RSS come from wait4 on that child."""
    out = OUT / f"run_{engine}_{size_mb}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", engine, str(source), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
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
        transform_cpu_seconds=counts.get("transform_cpu_seconds"),
    )


def instructions(engine: str, size_mb: int, source: Path, env: dict[str, str]) -> float:
    """Instructions per row of one warm transform, counted by valgrind (callgrind), so independent of load.

    The child runs under callgrind once transforming the file once and once twice: the difference is one
    transform without the imports. Single-threaded (POLARS_MAX_THREADS=1); callgrind serialises threads.
    """
    out = OUT / f"run_{engine}_{size_mb}"
    out.mkdir(parents=True, exist_ok=True)
    counted = []
    for times in (1, 2):
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
        done = subprocess.run(
            [*command, "--child", engine, str(source), str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, **env, TRANSFORMS: str(times), "POLARS_MAX_THREADS": "1"},
            check=False,
        )
        found = COLLECTED.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"{engine} under valgrind failed ({done.returncode}): {done.stderr[-500:]}")
        counted.append(int(found.group(1)))
        rows = json.loads(done.stdout.strip().splitlines()[-1])["rows_in"]
    return (counted[1] - counted[0]) / rows


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
    parser.add_argument(
        "--keep-last",
        action="store_true",
        help="also run feedline with `dedupe: last` (the last row of a key)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine and size; the fastest is kept")
    parser.add_argument(
        "--baseline", metavar="GIT_REV", help="also run the feedline of this git revision, interleaved"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per row under valgrind instead of timing (use small sizes, e.g. --sizes 10)",
    )
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, source, out = args.child
        if engine == "pandas":
            counts = child_pandas(Path(source), Path(out))
        else:
            if engine == "baseline":
                sys.path.insert(0, os.environ[BASELINE_SRC])
            keep = "last" if engine == "keep-last" else "first"
            counts = child_feedline(Path(source), Path(out), dedupe=engine != "no-key", keep=keep)
        print(json.dumps(counts))
        return

    sys.path.insert(0, str(REPO / "src"))
    print(machine(), flush=True)
    engines = [
        "feedline",
        *(["baseline"] if args.baseline else []),
        *(["no-key"] if args.no_key else []),
        *(["keep-last"] if args.keep_last else []),
        *([] if args.skip_pandas else ["pandas"]),
    ]
    env = {BASELINE_SRC: str(export_baseline(args.baseline))} if args.baseline else {}
    if args.instructions:
        for size in [int(s) for s in args.sizes.split(",")]:
            source, _ = sample_file(size)
            counts = {e: instructions(e, size, source, env) for e in engines if e in ("feedline", "baseline")}
            for engine, per_row in counts.items():
                print(f"{engine:8s} {size:5d} MB  {per_row:8.0f} instructions/row", flush=True)
            if "baseline" in counts:
                ratio = counts["feedline"] / counts["baseline"]
                print(
                    f"ratio    {size:5d} MB  instructions x{ratio:.3f} (feedline / baseline {args.baseline})"
                )
        return
    for size in [int(s) for s in args.sizes.split(",")]:
        source, stats = sample_file(size)
        runs: dict[str, list[Run]] = {engine: [] for engine in engines}
        for _ in range(args.repeat):  # interleaved, so that the machine's load hits every engine alike
            for engine in engines:
                run = measure(engine, size, source, env)
                runs[engine].append(run)
                per_row = f"  {run.cpu_us_per_row:5.2f} µs/row" if run.cpu_us_per_row is not None else ""
                print(
                    f"{engine:8s} {size:5d} MB  {run.seconds:7.2f} s  {run.mb_per_s:6.1f} MB/s  "
                    f"cpu {run.cpu_seconds:7.2f} s{per_row}  peak RSS {run.peak_rss_mb:7.0f} MiB  "
                    f"rows {run.rows_in} -> {run.rows_out}",
                    flush=True,
                )
                if engine in ("feedline", "keep-last") and run.rows_out != stats["clean"]:
                    raise SystemExit(
                        f"feedline wrote {run.rows_out} rows, the sample promised {stats['clean']}"
                    )
        best = {engine: min(done, key=lambda r: r.seconds) for engine, done in runs.items()}
        if args.repeat > 1:
            for engine, done in runs.items():
                median = statistics.median(r.seconds for r in done)
                print(f"{engine:8s} {size:5d} MB  median {median:.2f} s over {len(done)} runs", flush=True)
        if args.baseline:
            _compare(size, runs["feedline"], runs["baseline"], f"feedline / baseline {args.baseline}")
        if not args.skip_pandas:
            ours, theirs = best["feedline"], best["pandas"]
            throughput = ours.mb_per_s / theirs.mb_per_s
            cpu, rss = ours.cpu_seconds / theirs.cpu_seconds, ours.peak_rss_mb / theirs.peak_rss_mb
            print(
                f"ratio    {size:5d} MB  throughput x{throughput:.1f}  cpu x{cpu:.2f}  peak RSS x{rss:.2f}"
                " (feedline / pandas)",
                flush=True,
            )
    print(machine(), flush=True)


def _compare(size: int, ours: list[Run], theirs: list[Run], label: str) -> None:
    """Best and median ratios of two engines' interleaved runs: wall time, and CPU µs per row."""
    wall = [a.seconds / b.seconds for a, b in zip(ours, theirs, strict=True)]
    cpu = [
        a.cpu_us_per_row / b.cpu_us_per_row
        for a, b in zip(ours, theirs, strict=True)
        if a.cpu_us_per_row and b.cpu_us_per_row
    ]
    best_cpu = min(r.cpu_us_per_row or 0 for r in ours), min(r.cpu_us_per_row or 0 for r in theirs)
    print(
        f"ratio    {size:5d} MB  wall x{statistics.median(wall):.2f} (median of pairs)  "
        f"cpu/row x{statistics.median(cpu):.2f} (median), best {best_cpu[0]:.2f} vs {best_cpu[1]:.2f} µs/row"
        f"  ({label})",
        flush=True,
    )


if __name__ == "__main__":
    main()
