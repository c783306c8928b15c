"""Feed notifications from Airflow: email through `SmtpNotifier`, Slack through `SlackWebhookNotifier`.

`FeedNotifier` turns a callback context into one `feedline.notify` message and hands it to the installed
notifiers, one per route the feed configures. Credentials come only from the Airflow connections the
feed names. A delivery failure is logged and swallowed: a notification must never turn a success into
a failure, nor replace the error it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from feedline.contract import Feed, Notify
from feedline.notify import Event, Message, Notice, compose

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: Set in a task's context by `notify_quarantine`: that task's failure is a quarantine, already reported.
QUARANTINED = "feedline_quarantined"
#: The task whose return value summarizes a run (files and rows), and the one that fails a run on purpose
#: to restate the per-file failures already reported.
REPORT_TASK = "post_process.report"
SUMMARY_TASK = "cleanup"


class FeedNotifier(BaseNotifier):
    """Send one feed event (failure, success, quarantine) to the feed's email and Slack routes.

    `key` and `error` override what the context says, for events noticed inside a task before it ends
    (a quarantine). The delegates' `notify` is called directly, not through their template rendering:
    an error text holding `{{` must reach the reader as written, not be evaluated by Jinja.
    """

    template_fields = ()

    def __init__(self, feed: Feed, event: Event | str, *, key: str | None = None, error: str | None = None):
        super().__init__()
        self.feed = feed
        self.event = Event(event)
        self.key = key
        self.error = error

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Nothing to render, and `dag.test()` hands DAG callbacks a DAG that cannot build a Jinja env."""

    def notify(self, context: Context) -> None:
        try:
            notice = self.notice(context)
            if notice is not None:
                deliver(self.feed.notify, compose(notice), context)
        except Exception:
            self.log.exception("feed %s: the %s notification was not sent", self.feed.name, self.event)

    def notice(self, context: Context) -> Notice | None:
        """The facts of this event, or None when it is not to be reported (see `_already_reported`)."""
        facts = cast(Mapping[str, Any], context)
        if self.event is Event.failure and _already_reported(facts):
            return None
        ti = facts.get("ti")
        if self.event is Event.success:
            counts = run_counts(ti)
            if counts.get("files") == 0:  # a sweep that found nothing is not news
                return None
            return Notice(
                feed=self.feed.name,
                event=self.event,
                run_id=_run_id(facts),
                log_url=run_url(facts),
                counts=counts,
            )
        return Notice(
            feed=self.feed.name,
            event=self.event,
            key=self.key or file_key(facts),
            error=self.error or error_text(facts),
            task=getattr(ti, "task_id", None),
            try_number=getattr(ti, "try_number", None),
            run_id=_run_id(facts),
            log_url=_log_url(facts),
        )


def _already_reported(context: Mapping[str, Any]) -> bool:
    """A quarantine has its own message; the cleanup task's deliberate failure restates per-file ones."""
    from airflow.sdk.exceptions import AirflowFailException

    if context.get(QUARANTINED):
        return True
    ti = context.get("ti")
    restating = isinstance(context.get("exception"), AirflowFailException)
    return getattr(ti, "task_id", None) == SUMMARY_TASK and restating


def file_key(context: Mapping[str, Any]) -> str | None:
    """The file a per-file task worked on: set by the task, or its rendered map index afterwards."""
    key = context.get("file_key")
    if key:
        return str(key)
    ti = context.get("ti")
    map_index = getattr(ti, "map_index", None)
    rendered = getattr(ti, "rendered_map_index", None)
    return str(rendered) if map_index is not None and map_index >= 0 and rendered else None


def error_text(context: Mapping[str, Any]) -> str:
    exc = context.get("exception")
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    if exc:
        return str(exc)
    reason = context.get("reason")
    return str(reason) if reason else "no error was recorded (the task may have been killed); see the log"


def run_counts(ti: Any) -> dict[str, int]:
    """Files and rows of the run, from the report task's summary; empty when it cannot be read."""
    if ti is None:
        return {}
    try:
        summary = ti.xcom_pull(task_ids=REPORT_TASK)
    except Exception as exc:
        log.info("run summary unavailable (%s); the message goes without counts", exc)
        return {}
    if not isinstance(summary, Mapping):
        return {}
    files = summary.get("files") or {}
    loaded = sum(1 for fate in files.values() if isinstance(fate, Mapping) and fate.get("state") == "loaded")
    return {
        "files": len(files),
        "loaded": loaded,
        "rows_loaded": int(summary.get("rows_loaded") or 0),
        "rows_rejected": int(summary.get("rows_rejected") or 0),
    }


def _run_id(context: Mapping[str, Any]) -> str | None:
    run_id = context.get("run_id") or getattr(context.get("ti"), "run_id", None)
    return str(run_id) if run_id else None


def run_url(context: Mapping[str, Any]) -> str | None:
    """The run's page in the Airflow UI, built from `[api] base_url` like `ti.log_url` is."""
    from airflow.sdk.configuration import conf

    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or getattr(context.get("ti"), "dag_id", None)
    run_id = _run_id(context)
    if not dag_id or not run_id:
        return None
    base = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{quote(run_id)}"


def _log_url(context: Mapping[str, Any]) -> str | None:
    ti = context.get("ti")
    try:
        return str(ti.log_url) if ti is not None else run_url(context)
    except Exception:  # a partial task instance (e.g. built by the dag-processor) may lack a field
        return run_url(context)


def slack_escaped(text: str) -> str:
    """Slack reads &, < and > as markup; escape them so an error's text shows as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def route_notifiers(notify: Notify, message: Message) -> list[tuple[str, BaseNotifier]]:
    """One installed notifier per configured route, named for the log."""
    routes: list[tuple[str, BaseNotifier]] = []
    if notify.email:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        email = SmtpNotifier(
            to=list(notify.email),
            from_email=notify.from_email,
            subject=message.subject,
            html_content=message.html,
            smtp_conn_id=notify.smtp_conn_id,
        )
        routes.append((f"email (connection {notify.smtp_conn_id!r})", email))
    if notify.slack_webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        slack = SlackWebhookNotifier(
            slack_webhook_conn_id=notify.slack_webhook_conn_id, text=slack_escaped(message.text)
        )
        routes.append((f"Slack (connection {notify.slack_webhook_conn_id!r})", slack))
    return routes


def deliver(notify: Notify, message: Message, context: Context) -> list[str]:
    """Send `message` on every route; return the routes that took it. A failing route never raises.

    The delegates get the context without its DAG: they use it only to render the sender taken from
    the SMTP connection, and `dag.test()` gives DAG callbacks a serialized DAG that cannot render.
    """
    bare = cast("Context", {k: v for k, v in context.items() if k != "dag"})
    sent = []
    for route, notifier in route_notifiers(notify, message):
        try:
            notifier.notify(bare)
        except Exception as exc:
            log.warning(
                "%r: the %s notification failed (%s: %s); check that connection and that its server is "
                "reachable from this worker",
                message.subject,
                route,
                type(exc).__name__,
                exc,
            )
        else:
            sent.append(route)
    return sent


def on_failure_callbacks(feed: Feed) -> list[BaseNotifier]:
    """Task callbacks reporting a task's final failure, or none when the feed wants no such message."""
    return [FeedNotifier(feed, Event.failure)] if feed.notify.sends(Event.failure) else []


def on_success_callbacks(feed: Feed) -> list[BaseNotifier]:
    """DAG callbacks reporting a successful run that handled files, or none."""
    return [FeedNotifier(feed, Event.success)] if feed.notify.sends(Event.success) else []


def notify_quarantine(feed: Feed, ref: Mapping[str, Any], reason: str) -> None:
    """Report a file just quarantined, from inside the task that quarantined it; never raises.

    It also marks the task's context, so the failure the task raises next is not reported a second
    time as a failure — whether or not the feed wants quarantine messages.
    """
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
        cast(dict[str, Any], context)[QUARANTINED] = ref["key"]
    except Exception:  # outside a task: no task facts, the message still goes
        context = cast("Context", {})
    if feed.notify.sends(Event.quarantine):
        FeedNotifier(feed, Event.quarantine, key=str(ref["key"]), error=reason).notify(context)
