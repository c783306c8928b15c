"""Draw the latency and throughput figures of docs/benchmarks.md as PNG, from bench/out/latency/*.json.

    .venv/bin/python bench/plots.py --cdf before=bench/out/latency/baseline.json \\
        --cdf after=bench/out/latency/default.json --stages bench/out/latency/lever-*.json \\
        --throughput before=bench/out/latency/burst-before.json --throughput after=... --out docs/img

Each chart is an SVG written here, then rendered to PNG by Debian's chromium through Playwright
(matplotlib is not in the lock file); the SVG is kept next to the PNG.
"""

from __future__ import annotations

import argparse
import json
import statistics
from html import escape
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
STAGE_COLORS = ["#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b", "#041f45"]
WIDTH, HEIGHT = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
FONT = "font-family='DejaVu Sans, sans-serif'"


# --- reading results ----------------------------------------------------------------------------------


def load(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def latencies(result: dict[str, Any]) -> list[float]:
    return sorted(f["latency"] for f in result["files"] if f.get("latency") is not None)


def stage_medians(result: dict[str, Any]) -> dict[str, float]:
    """Median seconds of each stage of the files' paths (see latency.stages)."""
    from latency import stages

    values: dict[str, list[float]] = {}
    for f in result["files"]:
        for name, seconds in stages(f).items():
            values.setdefault(name, []).append(seconds)
    return {name: max(statistics.median(v), 0.0) for name, v in values.items()}


def loaded_curve(result: dict[str, Any]) -> list[tuple[float, int]]:
    """(seconds since the first file landed, files loaded by then) for a burst."""
    start = min(f["landed"] for f in result["files"])
    done = sorted(f["loaded"] - start for f in result["files"] if f.get("loaded") is not None)
    return [(t, i + 1) for i, t in enumerate(done)]


# --- SVG ---------------------------------------------------------------------------------------------------


def _frame(title: str, x_label: str, y_label: str, x_max: float, y_max: float, x_ticks: list[float],
           y_ticks: list[float], y_fmt: str = "{:g}") -> list[str]:  # fmt: skip
    """The axes, grid and labels of a chart; returns SVG elements."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f"<rect width='{WIDTH}' height='{HEIGHT}' fill='white'/>",
        f"<text x='{WIDTH / 2}' y='22' text-anchor='middle' font-size='15' {FONT}>{escape(title)}</text>",
    ]
    for tick in x_ticks:
        x = LEFT + tick / x_max * plot_w
        parts.append(f"<line x1='{x:.1f}' y1='{TOP}' x2='{x:.1f}' y2='{TOP + plot_h}' stroke='#eee'/>")
        parts.append(
            f"<text x='{x:.1f}' y='{TOP + plot_h + 16}' text-anchor='middle' font-size='11' {FONT}>"
            f"{tick:g}</text>"
        )
    for tick in y_ticks:
        y = TOP + plot_h - tick / y_max * plot_h
        parts.append(f"<line x1='{LEFT}' y1='{y:.1f}' x2='{LEFT + plot_w}' y2='{y:.1f}' stroke='#eee'/>")
        parts.append(
            f"<text x='{LEFT - 6}' y='{y + 4:.1f}' text-anchor='end' font-size='11' {FONT}>"
            f"{y_fmt.format(tick)}</text>"
        )
    parts += [
        f"<rect x='{LEFT}' y='{TOP}' width='{plot_w}' height='{plot_h}' fill='none' stroke='#888'/>",
        f"<text x='{LEFT + plot_w / 2}' y='{HEIGHT - 10}' text-anchor='middle' font-size='12' {FONT}>"
        f"{escape(x_label)}</text>",
        f"<text x='16' y='{TOP + plot_h / 2}' text-anchor='middle' font-size='12' {FONT} "
        f"transform='rotate(-90 16 {TOP + plot_h / 2})'>{escape(y_label)}</text>",
    ]
    return parts


def _ticks(limit: float, count: int = 6) -> list[float]:
    raw = limit / count
    step = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000) if s >= raw)
    return [round(i * step, 6) for i in range(int(limit / step) + 1)]


def _legend(entries: list[tuple[str, str]], x: float, y: float) -> list[str]:
    parts = []
    for i, (label, color) in enumerate(entries):
        row = y + i * 17
        parts.append(f"<rect x='{x}' y='{row - 9}' width='12' height='10' fill='{color}'/>")
        parts.append(f"<text x='{x + 17}' y='{row}' font-size='11' {FONT}>{escape(label)}</text>")
    return parts


def _svg(parts: list[str]) -> str:
    body = "\n".join(parts)
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}'>\n{body}\n</svg>\n"


def cdf_svg(series: dict[str, list[float]], targets: dict[str, float]) -> str:
    """Share of files queryable within x seconds of landing, one line per run, the targets marked."""
    x_max = max(max(v) for v in series.values() if v) * 1.05
    x_max = max(x_max, max(targets.values()) * 1.1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(
        "Landing to queryable, per file (cumulative share)",
        "seconds from landing (mtime) to rows visible in the warehouse",
        "share of files",
        x_max,
        1.0,
        _ticks(x_max),
        [0, 0.25, 0.5, 0.75, 0.95, 1.0],
        "{:.0%}",
    )

    def xy(x: float, y: float) -> str:
        return f"{LEFT + x / x_max * plot_w:.1f},{TOP + plot_h - y * plot_h:.1f}"

    for name, limit in targets.items():
        share = 0.5 if name == "p50" else 0.95
        parts.append(
            f"<circle cx='{LEFT + limit / x_max * plot_w:.1f}' cy='{TOP + plot_h - share * plot_h:.1f}' "
            "r='5' fill='none' stroke='black' stroke-width='1.5'/>"
        )
        parts.append(
            f"<text x='{LEFT + limit / x_max * plot_w + 8:.1f}' y='{TOP + plot_h - share * plot_h + 14:.1f}' "
            f"font-size='11' {FONT}>target {name} ≤ {limit:g} s</text>"
        )
    legend = []
    for i, (label, values) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        n = len(values)
        points = [xy(0, 0)]
        for k, v in enumerate(values):
            points += [xy(v, k / n), xy(v, (k + 1) / n)]
        parts.append(f"<polyline points='{' '.join(points)}' fill='none' stroke='{color}' stroke-width='2'/>")
        p50, p95 = statistics.median(values), values[min(n - 1, max(0, round(0.95 * n + 0.5) - 1))]
        legend.append((f"{label}: n={n}, p50 {p50:.1f} s, p95 {p95:.1f} s, max {values[-1]:.1f} s", color))
    parts += _legend(legend, LEFT + 12, TOP + 20)  # top left: every curve is still at 0 there
    return _svg(parts)


def stages_svg(rows: dict[str, dict[str, float]]) -> str:
    """One horizontal bar per run: the median of each stage, stacked (medians do not add up exactly)."""
    names = list(dict.fromkeys(name for medians in rows.values() for name in medians))
    x_max = max(sum(r.values()) for r in rows.values()) * 1.08
    height = TOP + BOTTOM + 34 * len(rows) + 70
    plot_w = WIDTH - 200 - RIGHT
    parts = [
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
        f"<text x='{WIDTH / 2}' y='22' text-anchor='middle' font-size='15' {FONT}>"
        "Where the time goes: median of each stage, per configuration</text>",
    ]
    for tick in _ticks(x_max):
        x = 200 + tick / x_max * plot_w
        parts.append(
            f"<line x1='{x:.1f}' y1='{TOP}' x2='{x:.1f}' y2='{TOP + 34 * len(rows)}' stroke='#eee'/>"
        )
        parts.append(
            f"<text x='{x:.1f}' y='{TOP + 34 * len(rows) + 14}' text-anchor='middle' font-size='11' "
            f"{FONT}>{tick:g} s</text>"
        )
    for row, (label, medians) in enumerate(rows.items()):
        y, x = TOP + 34 * row + 6, 200.0
        parts.append(
            f"<text x='192' y='{y + 15}' text-anchor='end' font-size='11' {FONT}>{escape(label)}</text>"
        )
        for i, name in enumerate(names):
            width = medians.get(name, 0.0) / x_max * plot_w
            if width > 0:
                parts.append(
                    f"<rect x='{x:.1f}' y='{y}' width='{width:.1f}' height='22' fill='{STAGE_COLORS[i]}'/>"
                )
            x += width
        parts.append(
            f"<text x='{x + 4:.1f}' y='{y + 15}' font-size='11' {FONT}>{sum(medians.values()):.1f} s</text>"
        )
    legend_y = TOP + 34 * len(rows) + 36
    for i, name in enumerate(names):
        col, line = i % 3, i // 3
        x, y = 40 + col * 240, legend_y + line * 17
        parts.append(f"<rect x='{x}' y='{y - 9}' width='12' height='10' fill='{STAGE_COLORS[i]}'/>")
        parts.append(f"<text x='{x + 17}' y='{y}' font-size='11' {FONT}>{escape(name)}</text>")
    body = "\n".join(parts)
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}'>\n{body}\n</svg>\n"


def throughput_svg(series: dict[str, list[tuple[float, int]]]) -> str:
    """Files loaded against time since a burst landed, one line per configuration."""
    x_max = max(c[-1][0] for c in series.values() if c) * 1.05
    y_max = max(c[-1][1] for c in series.values() if c) * 1.05
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(
        "Throughput: files loaded after a burst lands",
        "seconds since the burst landed",
        "files loaded (ledger loaded_at)",
        x_max,
        y_max,
        _ticks(x_max),
        _ticks(y_max, 5),
    )
    legend = []
    for i, (label, curve) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        points = [f"{LEFT:.1f},{TOP + plot_h:.1f}"]
        previous = 0
        for t, n in curve:
            x = LEFT + t / x_max * plot_w
            points += [f"{x:.1f},{TOP + plot_h - previous / y_max * plot_h:.1f}"]
            points += [f"{x:.1f},{TOP + plot_h - n / y_max * plot_h:.1f}"]
            previous = n
        parts.append(f"<polyline points='{' '.join(points)}' fill='none' stroke='{color}' stroke-width='2'/>")
        rate = curve[-1][1] / curve[-1][0] if curve and curve[-1][0] else 0.0
        legend.append(
            (f"{label}: {curve[-1][1]} files in {curve[-1][0]:.0f} s ({rate * 60:.0f} files/min)", color)
        )
    parts += _legend(legend, LEFT + 12, TOP + 18)
    return _svg(parts)


# --- rendering ---------------------------------------------------------------------------------------------


def render(charts: dict[str, str], out: Path) -> list[Path]:
    """Write each SVG and its PNG (chromium screenshots the SVG at twice the pixel density)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(device_scale_factor=2)
        for name, svg in charts.items():
            (out / f"{name}.svg").write_text(svg)
            page.set_content(f"<html><body style='margin:0'>{svg}</body></html>")
            page.locator("svg").first.screenshot(path=str(out / f"{name}.png"))
            written.append(out / f"{name}.png")
        browser.close()
    return written


def labelled(items: list[str]) -> dict[str, dict[str, Any]]:
    """`label=path` (or a bare path, labelled by its result's label) → results."""
    results = {}
    for item in items:
        label, sep, path = item.partition("=")
        result = load(path if sep else label)
        results[label if sep else str(result["label"])] = result
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cdf", action="append", default=[], metavar="LABEL=JSON", help="latency runs")
    parser.add_argument("--stages", action="append", default=[], metavar="LABEL=JSON", help="lever runs")
    parser.add_argument("--throughput", action="append", default=[], metavar="LABEL=JSON", help="bursts")
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    args = parser.parse_args()
    from latency import TARGETS

    charts = {}
    if args.cdf:
        charts["latency_cdf"] = cdf_svg({k: latencies(v) for k, v in labelled(args.cdf).items()}, TARGETS)
    if args.stages:
        charts["latency_stages"] = stages_svg({k: stage_medians(v) for k, v in labelled(args.stages).items()})
    if args.throughput:
        charts["throughput"] = throughput_svg(
            {k: loaded_curve(v) for k, v in labelled(args.throughput).items()}
        )
    for path in render(charts, Path(args.out)):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
