"""Alerts: rules from configuration, deduplicated, open -> acknowledged -> resolved (on clear,
or when the rule is removed), alert.raised / alert.resolved written to the outbox once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from fedimpute_shared.db import utcnow
from fedimpute_shared.testing.client import app_client
from monitoring_service.alerts.rules import AlertRule, RuleKind
from monitoring_service.config import Settings
from monitoring_service.models import (
    Alert,
    AlertState,
    ExternalService,
    FleetCheck,
    FleetStatus,
    MetricSample,
    OutboxEvent,
)


async def events(db):
    rows = (await db.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))).all()
    return [(r.event_type, r.payload["subject"], r.payload.get("reason")) for r in rows]


async def alerts(db):
    db.expire_all()
    return (await db.scalars(select(Alert).order_by(Alert.started_at))).all()


async def check(db, service, status, minutes_ago=0):
    db.add(
        FleetCheck(
            service=service, status=status, checked_at=utcnow() - timedelta(minutes=minutes_ago)
        )
    )
    await db.commit()


async def sample(db, source, name, value, minutes_ago=0):
    db.add(
        MetricSample(
            source=source, name=name, value=value, at=utcnow() - timedelta(minutes=minutes_ago)
        )
    )
    await db.commit()


async def test_a_service_down_for_three_checks_raises_one_alert_then_resolves(app, db):
    evaluate = app.state.evaluator.evaluate_once
    await check(db, "file-manager", FleetStatus.UP, 3)
    await check(db, "file-manager", FleetStatus.DOWN, 2)
    await check(db, "file-manager", FleetStatus.DOWN, 1)
    assert await evaluate() == {"raised": 0, "resolved": 0}  # two of three checks
    await check(db, "file-manager", FleetStatus.DOWN)
    assert (await evaluate())["raised"] == 1
    await check(db, "file-manager", FleetStatus.DOWN)
    assert (await evaluate())["raised"] == 0  # still the same alert
    [alert] = await alerts(db)
    assert (alert.rule, alert.kind, alert.severity, alert.subject) == (
        "service-down",
        "service_down",
        "critical",
        "file-manager",
    )
    assert alert.state is AlertState.OPEN
    await check(db, "file-manager", FleetStatus.UP)
    assert (await evaluate())["resolved"] == 1
    [alert] = await alerts(db)
    assert (alert.state, alert.resolve_reason) == (AlertState.RESOLVED, "cleared")
    assert await events(db) == [
        ("alert.raised", "file-manager", None),
        ("alert.resolved", "file-manager", "cleared"),
    ]
    await check(db, "file-manager", FleetStatus.DOWN)
    await check(db, "file-manager", FleetStatus.DOWN)
    await check(db, "file-manager", FleetStatus.DOWN)
    assert (await evaluate())["raised"] == 1  # down again: a new alert
    assert len(await alerts(db)) == 2


async def test_error_rate_must_hold_for_its_checks(app, db):
    evaluate = app.state.evaluator.evaluate_once
    await sample(db, "file-manager", "error_rate", 12.5)
    assert (await evaluate())["raised"] == 0  # error-rate needs 2 evaluations
    assert (await evaluate())["raised"] == 1
    [alert] = await alerts(db)
    assert alert.summary == "file-manager: error rate 12.5% (above 5%)"
    assert (alert.value, alert.threshold) == (12.5, 5)
    await sample(db, "file-manager", "error_rate", 0.5)
    assert (await evaluate())["resolved"] == 1


async def test_external_unhealthy_disk_and_consumer_lag(make_app, db):
    rules = [
        AlertRule(name="ext", kind=RuleKind.EXTERNAL_UNHEALTHY),
        AlertRule(name="disk", kind=RuleKind.DISK_USAGE, threshold=90, severity="critical"),
        AlertRule(name="lag", kind=RuleKind.CONSUMER_LAG, threshold=1000),
        AlertRule(name="slow", kind=RuleKind.LATENCY_P95, threshold=2000),
    ]
    wes = uuid.uuid4()
    db.add_all(
        [
            ExternalService(
                id=wes, slug="sandbox-wes", name="WES", status="unhealthy", error="502", uptime={}
            ),
            ExternalService(
                id=uuid.uuid4(), slug="michigan", name="M", status="degraded", uptime={}
            ),
            ExternalService(id=uuid.uuid4(), slug="new", name="N", status="unknown", uptime={}),
        ]
    )
    await db.commit()
    await sample(db, "host", "disk_percent:/", 95.0)
    await sample(db, "host", "disk_percent:/data", 50.0)
    await sample(db, "event-stream", "consumer_lag:notification", 5000)
    await sample(db, "event-stream", "consumer_lag:monitoring", 3)
    await sample(db, "api-gateway", "latency_p95_ms", 2500, minutes_ago=30)  # stale: not observed
    application = make_app(alert_rules=rules)
    async with app_client(application):
        assert (await application.state.evaluator.evaluate_once())["raised"] == 3
        subjects = {(a.rule, a.subject): a for a in await alerts(db)}
        assert set(subjects) == {("ext", "sandbox-wes"), ("disk", "host"), ("lag", "notification")}
        assert subjects[("ext", "sandbox-wes")].summary == "sandbox-wes is unhealthy: 502"
        service = await db.get(ExternalService, wes)
        service.is_active = False  # deactivated: no longer an alert
        await db.commit()
        assert (await application.state.evaluator.evaluate_once())["resolved"] == 1


async def test_job_failure_rate_jump(make_app, db):
    rule = AlertRule(
        name="jobs", kind=RuleKind.JOB_FAILURE_RATE, threshold=30, jump_points=20, min_jobs=5
    )
    for minutes, completed, failed in ((90, 9, 1), (70, 10, 0), (30, 2, 3), (10, 1, 4)):
        await sample(db, "job-processor", "jobs_completed", completed, minutes)
        await sample(db, "job-processor", "jobs_failed", failed, minutes)
    application = make_app(alert_rules=[rule])
    async with app_client(application):
        assert (await application.state.evaluator.evaluate_once())["raised"] == 1
    [alert] = await alerts(db)
    assert alert.subject == "jobs"
    assert alert.value == 70.0  # 7 of 10 in the last hour, against 5 % the hour before
    assert (
        alert.summary
        == "job failure rate 70% in the last hour (10 jobs finished; 5% an hour before)"
    )


async def test_job_failure_rate_jump_from_job_processors_stats(make_app, db):
    """Without per-outcome counters, the 24 h rate from job-processor's stats API (stored by
    the scraper as the "jobs" series) against its value an hour before."""
    rule = AlertRule(
        name="jobs", kind=RuleKind.JOB_FAILURE_RATE, threshold=30, jump_points=20, min_jobs=5
    )
    await sample(db, "jobs", "failure_rate_24h", 10.0, minutes_ago=70)
    await sample(db, "jobs", "finished_24h", 20, minutes_ago=70)
    await sample(db, "jobs", "failure_rate_24h", 45.0, minutes_ago=1)
    await sample(db, "jobs", "finished_24h", 22, minutes_ago=1)
    application = make_app(alert_rules=[rule])
    async with app_client(application):
        assert (await application.state.evaluator.evaluate_once())["raised"] == 1
    [alert] = await alerts(db)
    assert alert.summary == "job failure rate 45% over 24 h (22 jobs finished; 10% an hour before)"


async def test_no_job_figures_no_job_alert(make_app, db):
    rule = AlertRule(name="jobs", kind=RuleKind.JOB_FAILURE_RATE, threshold=30)
    application = make_app(alert_rules=[rule])
    async with app_client(application):
        assert await application.state.evaluator.evaluate_once() == {"raised": 0, "resolved": 0}


async def test_a_steady_high_failure_rate_is_not_a_jump(make_app, db):
    rule = AlertRule(name="jobs", kind=RuleKind.JOB_FAILURE_RATE, threshold=30, jump_points=20)
    for minutes in (90, 30):
        await sample(db, "job-processor", "jobs_completed", 4, minutes)
        await sample(db, "job-processor", "jobs_failed", 6, minutes)
    application = make_app(alert_rules=[rule])
    async with app_client(application):
        assert (await application.state.evaluator.evaluate_once())["raised"] == 0


async def test_removing_a_rule_resolves_its_alerts(make_app, db):
    db.add(
        Alert(
            rule="old-rule",
            kind="disk_usage",
            severity="warning",
            subject="host",
            summary="s",
            state=AlertState.ACKNOWLEDGED,
        )
    )
    await db.commit()
    application = make_app(alert_rules=[])
    async with app_client(application):
        assert (await application.state.evaluator.evaluate_once())["resolved"] == 1
    [alert] = await alerts(db)
    assert alert.resolve_reason == "rule_removed"
    assert await events(db) == [("alert.resolved", "host", "rule_removed")]


async def test_the_database_refuses_a_second_unresolved_alert_for_the_same_rule_and_subject(db):
    from sqlalchemy.exc import IntegrityError

    db.add(Alert(rule="r", kind="k", severity="warning", subject="s", summary="x"))
    await db.commit()
    db.add(Alert(rule="r", kind="k", severity="warning", subject="s", summary="x"))
    with pytest.raises(IntegrityError):
        await db.commit()
    await db.rollback()


async def test_admins_list_and_acknowledge(app, client, admin, db, user_token):
    evaluate = app.state.evaluator.evaluate_once
    for minutes in (2, 1, 0):
        await check(db, "notification", FleetStatus.DOWN, minutes)
    await evaluate()
    listed = (await client.get("/monitoring/alerts?state=open", headers=admin)).json()["items"]
    [item] = listed
    ack = await client.post(f"/monitoring/alerts/{item['id']}/acknowledge", headers=admin)
    assert ack.status_code == 200
    assert ack.json()["state"] == "acknowledged"
    again = await client.post(f"/monitoring/alerts/{item['id']}/acknowledge", headers=admin)
    assert again.json()["acknowledged_at"] == ack.json()["acknowledged_at"]
    assert (await client.get("/monitoring/alerts?state=open", headers=admin)).json()["items"] == []
    await check(db, "notification", FleetStatus.UP)
    assert (await evaluate())["resolved"] == 1  # an acknowledged alert resolves on clear too
    resolved = await client.post(f"/monitoring/alerts/{item['id']}/acknowledge", headers=admin)
    assert resolved.status_code == 409
    assert (await client.get(f"/monitoring/alerts/{item['id']}", headers=admin)).json()[
        "state"
    ] == "resolved"
    assert (
        await client.get(f"/monitoring/alerts/{uuid.uuid4()}", headers=admin)
    ).status_code == 404
    assert (await client.get("/monitoring/alerts?state=bogus", headers=admin)).status_code == 422
    researcher = user_token(uuid.uuid4())
    assert (
        await client.post(f"/monitoring/alerts/{item['id']}/acknowledge", headers=researcher)
    ).status_code == 403
    rules = (await client.get("/monitoring/alert-rules", headers=admin)).json()
    assert {r["kind"] for r in rules} == {k.value for k in RuleKind}


async def test_open_alerts_gauge(app, client, db):
    for minutes in (2, 1, 0):
        await check(db, "notification", FleetStatus.DOWN, minutes)
    await app.state.evaluator.evaluate_once()
    text = (await client.get("/metrics")).text
    assert 'monitoring_alerts_open{severity="critical"} 1.0' in text


def test_rules_are_checked_when_configured(settings, monkeypatch):
    with pytest.raises(ValidationError, match="needs a threshold"):
        AlertRule(name="x", kind=RuleKind.ERROR_RATE)
    with pytest.raises(ValidationError, match="its own name"):
        Settings(alert_rules=[AlertRule(name="a", kind=RuleKind.SERVICE_DOWN)] * 2)
    monkeypatch.setenv("ALERT_RULES", '[{"name": "d", "kind": "disk_usage", "threshold": 80}]')
    assert Settings().alert_rules == [AlertRule(name="d", kind=RuleKind.DISK_USAGE, threshold=80)]
    monkeypatch.setenv("ALERT_RULES", '[{"name": "d", "kind": "disk_usage"}]')
    with pytest.raises(ValidationError, match="needs a threshold"):
        Settings()
    with pytest.raises(ValidationError):
        Settings(watched_services=["nope"])
