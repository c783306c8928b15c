"""The machine services a Celery stack claims: a Redis database per stack (never shared, freed on destroy,
taken over when its owner is gone) and the celery 5.7 compatibility shim, against the real Redis."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from feedline.stack_celery import CLAIM_KEY, claim_broker_db, ping_redis, release_broker_db

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
def redis_url() -> str:
    if problem := ping_redis(REDIS):
        pytest.skip(f"NO REDIS — the broker claim tests did not run: {problem}; .ci/run starts it")
    return REDIS


def _client(db: int):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(REDIS, db=db)


def test_each_stack_gets_its_own_broker_database_and_frees_it(redis_url: str, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    db_first = claim_broker_db(redis_url, first)
    try:
        assert claim_broker_db(redis_url, first) == db_first  # a restart keeps its queue
        db_second = claim_broker_db(redis_url, second)
        try:
            assert db_second != db_first
            assert _client(db_second).get(CLAIM_KEY) == str(second.resolve()).encode()
        finally:
            release_broker_db(redis_url, db_second, second)
        assert _client(db_second).dbsize() == 0
    finally:
        release_broker_db(redis_url, db_first, first)
    assert _client(db_first).get(CLAIM_KEY) is None


def test_a_database_whose_owner_is_gone_is_flushed_and_taken_over(redis_url: str, tmp_path: Path) -> None:
    keeper, gone, newcomer = tmp_path / "keeper", tmp_path / "gone", tmp_path / "newcomer"
    for home in (keeper, gone, newcomer):
        home.mkdir()
    db_keeper = claim_broker_db(redis_url, keeper)
    db_gone = claim_broker_db(redis_url, gone)
    try:
        _client(db_gone).set("_kombu.leftover", "a message of a stack that crashed")
        shutil.rmtree(gone)
        db_new = claim_broker_db(redis_url, newcomer)
        assert db_new == db_gone
        assert _client(db_new).get("_kombu.leftover") is None
        assert _client(db_new).get(CLAIM_KEY) == str(newcomer.resolve()).encode()
        assert _client(db_keeper).get(CLAIM_KEY) == str(keeper.resolve()).encode()
    finally:
        release_broker_db(redis_url, db_gone, newcomer)
        release_broker_db(redis_url, db_keeper, keeper)


@pytest.mark.airflow
def test_the_celery_provider_finds_the_database_backend_retry_decorator() -> None:
    import celery.backends.database as database
    from sqlalchemy.exc import OperationalError

    from feedline.stack_celery import restore_database_retry

    restore_database_retry()
    from airflow.providers.celery.executors import celery_executor_utils  # imported it at module level

    calls: list[int] = []

    @database.retry
    def flaky(fail: int) -> str:
        calls.append(1)
        if len(calls) <= fail:
            raise OperationalError("SELECT 1", {}, Exception("connection reset"))
        return "ok"

    assert flaky(2) == "ok"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(OperationalError):
        flaky(5)
    assert len(calls) == 3  # three attempts, then the error
    assert celery_executor_utils.retry is database.retry
