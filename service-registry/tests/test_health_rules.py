"""The status rules as pure functions: flap protection, streaks, deactivation."""

from datetime import UTC, datetime, timedelta

from service_registry.health.probes import ProbeResult
from service_registry.health.state import HealthRules, HealthState, apply
from service_registry.models import HealthStatus as S

RULES = HealthRules(failures_to_flip=2, deactivate_after=timedelta(days=30))
NOW = datetime(2026, 11, 28, tzinfo=UTC)
OK = ProbeResult(S.HEALTHY, 12.0)
BAD = ProbeResult(S.UNHEALTHY, error="HTTP 500")


def test_one_blip_does_not_flip_a_healthy_service():
    t = apply(HealthState(S.HEALTHY, 0, None), BAD, NOW, RULES)
    assert t.new == HealthState(S.HEALTHY, 1, NOW)
    assert not t.status_changed


def test_second_consecutive_failure_flips():
    t = apply(
        HealthState(S.HEALTHY, 1, NOW), ProbeResult(S.TIMEOUT), NOW + timedelta(minutes=5), RULES
    )
    assert t.new.status is S.TIMEOUT
    assert t.new.first_unhealthy_at == NOW  # the streak started at the first failure
    assert t.status_changed


def test_success_resets_the_streak():
    t = apply(HealthState(S.UNHEALTHY, 7, NOW), OK, NOW + timedelta(hours=1), RULES)
    assert t.new == HealthState(S.HEALTHY, 0, None)
    assert t.status_changed


def test_degraded_is_a_success():
    t = apply(HealthState(S.UNKNOWN, 0, None), ProbeResult(S.DEGRADED, 4000.0), NOW, RULES)
    assert t.new.status is S.DEGRADED
    assert t.new.consecutive_failures == 0


def test_deactivation_after_thirty_days_of_failure():
    first = NOW - timedelta(days=30)
    assert apply(HealthState(S.UNHEALTHY, 5000, first), BAD, NOW, RULES).deactivate
    almost = NOW - timedelta(days=29, hours=23)
    assert not apply(HealthState(S.UNHEALTHY, 5000, almost), BAD, NOW, RULES).deactivate


def test_flip_threshold_is_configurable():
    strict = HealthRules(failures_to_flip=1, deactivate_after=timedelta(days=30))
    assert apply(HealthState(S.HEALTHY, 0, None), BAD, NOW, strict).new.status is S.UNHEALTHY
