"""Notification wording: one readable message per event, naming feed, file, error, log and the next step."""

from __future__ import annotations

from feedline.notify import MAX_ERROR_CHARS, Event, Notice, compose

LOG = "http://airflow.example/dags/feed_orders/runs/manual__1/tasks/process.transform/mapped/0?try_number=4"


def failure(**changes: object) -> Notice:
    facts: dict[str, object] = {
        "feed": "orders",
        "event": Event.failure,
        "key": "2024/a.csv",
        "error": "TransientError: Lambda function t on data/a.csv: no answer from Lambda",
        "task": "process.transform",
        "try_number": 4,
        "run_id": "manual__1",
        "log_url": LOG,
    }
    facts.update(changes)
    return Notice(**facts)  # type: ignore[arg-type]


def test_failure_of_a_file_names_everything_and_the_replay_command() -> None:
    message = compose(failure())
    assert message.subject == "[feedline] orders: 2024/a.csv failed in process.transform"
    assert message.text.splitlines() == [
        "feedline · orders: 2024/a.csv failed in process.transform",
        "Feed: orders",
        "State: failed",
        "File: 2024/a.csv",
        "Task: process.transform (try 4)",
        "Run: manual__1",
        "Error: TransientError: Lambda function t on data/a.csv: no answer from Lambda",
        f"Log: {LOG}",
        "Next: fix the cause in the error and the log (retries are exhausted), then run "
        "`feedline replay --feed orders --file 2024/a.csv`",
    ]
    assert f'<a href="{LOG}">' in message.html.replace("&amp;", "&")
    assert "<td>2024/a.csv</td>" in message.html


def test_failure_without_a_file_points_at_the_next_run() -> None:
    message = compose(failure(key=None, task="ingest.discover"))
    assert message.subject == "[feedline] orders: task ingest.discover failed"
    assert "File:" not in message.text
    assert message.text.endswith("the feed's next run picks up every waiting file")
    assert compose(failure(key=None, task=None)).subject == "[feedline] orders: run failed"


def test_quarantine_says_fix_the_data_or_contract_then_replay() -> None:
    message = compose(
        failure(event=Event.quarantine, error="transform of orders/bad.csv failed: missing column 'x'")
    )
    assert message.subject == "[feedline] orders: 2024/a.csv quarantined"
    assert "State: quarantined" in message.text
    assert "in process.transform" not in message.subject
    assert message.text.endswith(
        "fix the file or the feed's contract (the error says which), then run "
        "`feedline replay --feed orders --file 2024/a.csv`"
    )


def test_success_carries_counts_and_no_error() -> None:
    notice = Notice(
        feed="orders",
        event=Event.success,
        run_id="scheduled__2",
        log_url="http://airflow.example/dags/feed_orders/runs/scheduled__2",
        counts={"files": 2, "loaded": 2, "rows_loaded": 690, "rows_rejected": 10},
    )
    message = compose(notice)
    assert message.subject == "[feedline] orders: run succeeded, 2 file(s)"
    assert "Counts: files 2, loaded 2, rows loaded 690, rows rejected 10" in message.text
    assert "Error" not in message.text and "Next: nothing to do" in message.text


def test_markup_in_an_error_is_escaped_in_html_and_kept_in_text() -> None:
    error = "TerminalError: bad header <script>alert(1)</script> & {{ dag }}"
    message = compose(failure(error=error))
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; {{ dag }}" in message.html
    assert f"Error: {error}" in message.text


def test_a_key_with_a_newline_or_space_cannot_break_the_subject_or_the_command() -> None:
    message = compose(failure(key="evil\r\nBcc: x@y.z.csv"))
    assert "\n" not in message.subject and "\r" not in message.subject
    spaced = compose(failure(key="my file.csv"))
    assert "`feedline replay --feed orders --file 'my file.csv'`" in spaced.text


def test_a_long_error_is_cut_with_a_pointer_to_the_log() -> None:
    message = compose(failure(error="x" * (MAX_ERROR_CHARS + 500)))
    line = next(line for line in message.text.splitlines() if line.startswith("Error: "))
    assert line.endswith("… (500 more characters in the task log)")
    assert len(line) < MAX_ERROR_CHARS + 60
