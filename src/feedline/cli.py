"""The `feedline` command: validate feed files, show each file's fate, process a feed without Airflow."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from feedline.contract import Feed, load_feeds
from feedline.settings import Settings

if TYPE_CHECKING:
    from feedline.ledger import FileState
    from feedline.pipeline import RunSummary
    from feedline.warehouse import Warehouse

app = typer.Typer(
    help="feedline: exactly-once file-to-warehouse feeds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
FeedsOption = Annotated[
    Path | None, typer.Option("--feeds", help="Feeds folder (default: FEEDLINE_FEEDS or ./feeds).")
]


def _settings(feeds: Path | None) -> Settings:
    settings = Settings.from_env()
    return settings if feeds is None else settings.with_feeds(feeds.resolve())


@app.command()
def validate(feeds: FeedsOption = None) -> None:
    """Check every feed file; exit 1 if any is invalid, naming the file, the field and the fix."""
    settings = _settings(feeds)
    feed_set = load_feeds(settings.feeds_dir)
    for feed in feed_set.feeds:
        console.print(
            f"[green]ok[/]    {feed.name}: {len(feed.columns)} columns → {feed.target.table} "
            f"({feed.target.mode.value})"
        )
    for error in feed_set.errors.values():
        console.print(f"[red]error[/] {error}")
    if not feed_set.feeds and not feed_set.errors:
        console.print(f"no feed files in {settings.feeds_dir}")
    raise typer.Exit(1 if feed_set.errors else 0)


def status_table(warehouse: Warehouse) -> Table:
    """Files per state per feed with row counts and the last error, from the ledger."""
    from feedline.ledger import Ledger

    table = Table(title="Files by state (ledger)")
    for column in ("feed", "state", "files", "rows in", "rows loaded", "rows rejected", "last error"):
        table.add_column(column, overflow="fold")
    for row in Ledger(warehouse).summary():
        error = str(row.get("last_error") or "")
        table.add_row(
            str(row["feed"]),
            str(row["state"]),
            str(row["files"]),
            str(row.get("rows_in") or 0),
            str(row.get("rows_loaded") or 0),
            str(row.get("rows_rejected") or 0),
            error if len(error) < 80 else error[:77] + "...",
        )
    return table


def checks_tables(warehouse: Warehouse, feed: str | None = None) -> list[Table]:
    """The latest result of every batch check per feed, and the failed checks per file."""
    from feedline.quality.checks import failed_results, latest_results

    latest = Table(title="Batch checks: latest result per feed and check (feedline_audit.checks)")
    for column in ("feed", "check", "severity", "result", "observed", "message", "checked at (UTC)"):
        latest.add_column(column, overflow="fold")
    for row in latest_results(warehouse, feed):
        observed = "" if row["observed"] is None else f"{float(row['observed']):.6g}"
        latest.add_row(
            str(row["feed"]), str(row["check"]), str(row["severity"]),
            "[green]passed[/]" if row["passed"] else "[red]failed[/]",
            observed, str(row["message"]), f"{row['checked_at']:%Y-%m-%d %H:%M:%S}",
        )  # fmt: skip
    failed = Table(title="Failed batch checks per file (newest first)")
    for column in ("feed", "file", "version", "file state now", "check", "severity", "message"):
        failed.add_column(column, overflow="fold")
    for row in failed_results(warehouse, feed):
        failed.add_row(
            str(row["feed"]), str(row["key"] or "(not in the ledger)"), str(row["version"] or ""),
            str(row["state"] or ""), str(row["check"]), str(row["severity"]), str(row["message"]),
        )  # fmt: skip
    return [latest, failed]


@app.command()
def status(
    feeds: FeedsOption = None,
    files: Annotated[bool, typer.Option(help="List every file with why it is where it is.")] = False,
    feed: Annotated[str | None, typer.Option("--feed", help="Only this feed's files.")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", help="Only files in this state.")] = None,
    checks: Annotated[
        bool, typer.Option("--checks", help="Show the batch checks' latest results and failures per file.")
    ] = False,
) -> None:
    """Show each feed's files by state, rows loaded and rejected, and the last error."""
    from feedline.ledger import FileState, Ledger
    from feedline.warehouse import connect_warehouse

    settings = _settings(feeds)
    if "://" not in settings.warehouse and not Path(settings.warehouse).exists():
        console.print(f"nothing loaded yet: no warehouse at {settings.warehouse}")
        return
    states = [_state(s) for s in state] if state else None
    warehouse = connect_warehouse(settings.warehouse, read_only=True)
    console.print(status_table(warehouse))
    if files or feed or states:
        table = Table(title="Files")
        for column in ("feed", "key", "version", "state", "why"):
            table.add_column(column, overflow="fold")
        for entry in Ledger(warehouse).entries(feed, states or list(FileState)):
            table.add_row(entry.feed, entry.key, str(entry.version), entry.state.value, entry.why())
        console.print(table)
    if checks:
        for table in checks_tables(warehouse, feed):
            console.print(table if table.row_count else f"{table.title}: none")


def _state(text: str) -> FileState:
    from feedline.ledger import FileState

    try:
        return FileState(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a file state; use one of {', '.join(FileState)}") from None


def _feed(settings: Settings, name: str) -> Feed:
    """The valid feed `name`, or exit 2 naming the problem (an invalid feed file, or no such feed)."""
    feed_set = load_feeds(settings.feeds_dir)
    match = next((f for f in feed_set.feeds if f.name == name), None)
    if match is None:
        problem = next((str(e) for path, e in feed_set.errors.items() if Path(path).stem == name), None)
        console.print(f"[red]{problem or f'no valid feed named {name!r} in {settings.feeds_dir}'}[/]")
        raise typer.Exit(2)
    return match


def _print_run(summary: RunSummary) -> None:
    for key, state in summary.files.items():
        colour = "green" if state == "loaded" else "red"
        console.print(f"[{colour}]{state:<11}[/] {key} {summary.errors.get(key, '')}")
    console.print(
        f"{len(summary.files)} file(s); {summary.rows_loaded} rows loaded, "
        f"{summary.rows_rejected} rows rejected"
    )


@app.command()
def replay(
    feed: Annotated[str, typer.Option("--feed", help="Feed name.")],
    state: Annotated[
        list[str] | None, typer.Option("--state", help="quarantined and/or failed (default: both).")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", help="Only files that reached their state since (UTC).")
    ] = None,
    file: Annotated[list[str] | None, typer.Option("--file", help="Only this key (repeatable).")] = None,
    now: Annotated[
        bool, typer.Option("--run/--no-run", help="Process the re-opened files now, in this process.")
    ] = True,
    feeds: FeedsOption = None,
) -> None:
    """Re-open quarantined or failed files of FEED after a fix, and process them again exactly once."""
    from feedline.pipeline import FeedPipeline
    from feedline.replay import REPLAYABLE
    from feedline.replay import replay as reopen

    settings = _settings(feeds)
    pipeline = FeedPipeline(_feed(settings, feed), settings)
    states = [_state(s) for s in state] if state else list(REPLAYABLE)
    try:
        result = reopen(pipeline, states=states, since=since, keys=file)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    for entry in result.reopened:
        console.print(f"[green]re-opened[/]   {entry.key} (version {entry.version})")
    for label, reason in result.skipped.items():
        console.print(f"[yellow]skipped[/]     {label}: {reason}")
    if not result.reopened:
        console.print("nothing to replay")
        raise typer.Exit(1 if result.skipped else 0)
    if not now:
        console.print("the feed's next run processes them (its DAG, or `feedline run --feed " + feed + "`)")
        return
    summary = pipeline.run_once()
    _print_run(summary)
    raise typer.Exit(1 if summary.errors else 0)


@app.command()
def run(feed: Annotated[str, typer.Option("--feed", help="Feed name.")], feeds: FeedsOption = None) -> None:
    """Process every file waiting for FEED once, in this process, without the scheduler."""
    from feedline.pipeline import FeedPipeline

    settings = _settings(feeds)
    summary = FeedPipeline(_feed(settings, feed), settings).run_once()
    _print_run(summary)
    raise typer.Exit(1 if summary.errors else 0)


@app.command()
def infer(
    sample: Annotated[Path, typer.Argument(help="A sample file of the feed (CSV, optionally .gz).")],
    feed: Annotated[str, typer.Option("--feed", help="Name of the new feed.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the YAML here, e.g. feeds/NAME.yaml (default: print).")
    ] = None,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Read at most this many data rows.")] = 100_000,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Infer a commented feed YAML from SAMPLE, for a person to review before the feed goes live."""
    from feedline.errors import FeedlineError
    from feedline.infer import infer_feed_yaml

    problem = None
    if out is not None and out.exists() and not force:
        problem = f"{out} exists; pass --force to overwrite it, or choose another --out"
    elif out is not None and out.stem != feed:
        problem = f"--out {out}: a feed file is named after its feed; use {out.with_name(feed + '.yaml')}"
    else:
        try:
            text = infer_feed_yaml(sample, feed, rows)
        except FeedlineError as exc:
            problem = str(exc)
    if problem is not None:
        console.print(problem, style="red", markup=False)
        raise typer.Exit(2)
    if out is None:
        print(text, end="")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}: review it, then `feedline validate`", markup=False)


if __name__ == "__main__":
    app()
