"""The fault catalog: every fault the suite injects, how feedline recovers, and what the test asserts.

`docs/reliability.md` is generated from `FAULTS` (see `markdown()`); `test_fault_catalog.py` keeps the
catalog and the tests in step: each entry names a test that exists, and each fault test has an entry.
Every test also asserts the common outcome `AFTER_RECOVERY`.
"""

from __future__ import annotations

from dataclasses import dataclass

AFTER_RECOVERY = (
    "the target table equals a fault-free run of the same files (rows, distinct keys, checksum of every "
    "value); every ledger entry is terminal (`loaded`); no staging table is left; the processed area holds "
    "exactly one complete Parquet per loaded file (no partial object, no unfinished multipart upload); the "
    "landing area is empty, every raw file archived and none quarantined"
)


@dataclass(frozen=True)
class Fault:
    """One injected fault: what breaks, how feedline recovers, what is asserted, and the test that does it."""

    name: str
    injected: str
    recovery: str
    outcome: str
    test: str


FAULTS: list[Fault] = [
    Fault(
        name="Worker killed in the middle of a transform",
        injected="SIGKILL to the Airflow task process transforming a 3 M-row file (found among the "
        "stack's scheduler descendants by its title `airflow worker -- <task instance id>`)",
        recovery="Airflow retries the transform task (feed retries: 2, 1 s delay); the retry marks the "
        "file `transforming` again and redoes the whole transform",
        outcome="the file was still `transforming` when killed; it ends `loaded` once (ledger attempts 2, "
        "transform try 2, load try 1) with exactly the rows of its clean Parquet; every DAG run succeeded",
        test="tests/faults/test_fault_stack.py::test_worker_killed_mid_transform_is_retried_and_loads_once",
    ),
    Fault(
        name="Warehouse connection killed in the middle of a load (PostgreSQL)",
        injected="`pg_terminate_backend` from another session on the load's backend while its COPY of "
        "500 k rows into the target table runs (found in `pg_stat_activity`)",
        recovery="the load step is run again with the same transform result, as Airflow's load task retry",
        outcome="a `TransientError` naming the feed and file; the failed attempt left the table, the ledger "
        "entry (`loading`, no rows, no `loaded_at`) and the staging schema unchanged; the retry loads the "
        "file once and a further retry is a no-op",
        test="tests/faults/test_fault_warehouse_connection.py::"
        "test_connection_killed_mid_copy_rolls_back_and_the_retry_loads_once",
    ),
    Fault(
        name="S3 down during a run, recovered by retries",
        injected="the S3 server (moto over HTTP; source and lake areas on S3) stops for 4 s — listening "
        "socket closed, open connections dropped — as soon as the run is transforming a file",
        recovery="each step (discover, transform, load, archive) retried on a transient error after 1 s, "
        "as the feed's Airflow tasks are",
        outcome="the steps that met the outage failed with a transient 'cannot reach S3' error; after the "
        "restart all 3 files are loaded once",
        test="tests/faults/test_fault_s3.py::test_s3_down_mid_run_is_retried_and_loads_everything_once",
    ),
    Fault(
        name="S3 down during `feedline run`, recovered by replay",
        injected="the same 4 s S3 outage during `run_once` (the scheduler-free run)",
        recovery="once S3 is back, `replay()` re-opens the `failed` files and the next run processes them",
        outcome="the files the outage hit are `failed` with an S3 error, the others `loaded`; the replay "
        "re-opens exactly the failed ones and the next run loads them once",
        test="tests/faults/test_fault_s3.py::test_s3_down_during_feedline_run_then_replay_loads_everything_once",
    ),
    Fault(
        name="The same local file event delivered three times",
        injected="on the running stack, the bytes of a loaded file dropped again three times under the same "
        "key, each firing a file event of the folder watcher (asset events counted)",
        recovery="none needed: the ledger recognises the content (same key, SHA-256 and size)",
        outcome="the file's ledger entry is unchanged, its rows are loaded once, each re-delivery is "
        "tidied out of the landing area, every DAG run succeeded",
        test="tests/faults/test_fault_stack.py::test_the_same_file_event_three_times_loads_once",
    ),
    Fault(
        name="The same S3 object delivered three times",
        injected="three more PUTs of the same bytes under the same key (three ObjectCreated events, one "
        "ETag), a run after each",
        recovery="none needed: the ledger recognises the content (same key, ETag and size)",
        outcome="no run processes it again; one ledger entry with one attempt",
        test="tests/faults/test_fault_s3.py::test_the_same_object_delivered_three_times_loads_once",
    ),
    Fault(
        name="The same content under two keys (DuckDB and PostgreSQL)",
        injected="one export dropped twice under two names, in an upsert feed and in an append feed",
        recovery="none needed: by design the ledger tells files apart by key and content, so a re-export "
        "under a new name is a new delivery",
        outcome="two ledger entries per feed; the upsert table holds each key once; the append table holds "
        "the rows twice, each copy tagged with its own file id (`_feedline_file_id`)",
        test="tests/faults/test_fault_versions.py::test_same_content_under_two_keys",
    ),
    Fault(
        name="New content under a known key (DuckDB and PostgreSQL)",
        injected="a second export under the name of a loaded one, overlapping half of its order ids with "
        "new values",
        recovery="none needed: it is registered as version 2 of the key and loaded after version 1",
        outcome="versions 1 and 2 both recorded and `loaded`; the upsert table holds version 2's values for "
        "the shared keys and version 1's rows only where version 2 lacks the key; both raw versions archived",
        test="tests/faults/test_fault_versions.py::test_new_content_under_a_known_key_is_a_new_version",
    ),
    Fault(
        name="Two runs of the same feed at once (DuckDB and PostgreSQL)",
        injected="two OS processes running `feedline run --feed orders` (the CLI's app), released at the "
        "same instant on the same 3 files (PostgreSQL: a new database, so both also create the ledger)",
        recovery="none needed: the ledger row lock makes one load win; the other run's late marks and "
        "moves are no-ops",
        outcome="both processes exit 0; they really overlapped (the ledger counts more transform attempts "
        "than files); every file is loaded once",
        test="tests/faults/test_fault_concurrent_runs.py::test_two_runs_at_once_load_every_file_once",
    ),
    Fault(
        name="Triggerer crash while files land",
        injected="SIGKILL to the stack's triggerer process group, then 3 files dropped; no DAG run starts "
        "while it is down",
        recovery="the triggerer is started again; its folder watcher fires for the files already present",
        outcome="the 3 files are loaded once (one attempt each) and every DAG run succeeded",
        test="tests/faults/test_fault_stack.py::test_triggerer_restart_with_files_landing_loads_every_file_once",
    ),
]


def markdown() -> str:
    """The catalog as a Markdown table (plus the outcome every test asserts), for docs/reliability.md."""
    rows = [
        "| Fault | Injected | Recovery | Asserted | Test |",
        "|---|---|---|---|---|",
        *(
            f"| {f.name} | {f.injected} | {f.recovery} | {f.outcome} | `{f.test}` |".replace("\n", " ")
            for f in FAULTS
        ),
    ]
    return "\n".join(rows) + f"\n\nAfter recovery, every test also asserts that {AFTER_RECOVERY}.\n"
