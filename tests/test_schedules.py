"""When rate, cron and at expressions fire (local_runtime/schedules.py), as EventBridge documents them."""

from datetime import UTC, datetime, timedelta

import pytest

from local_runtime.schedules import next_fire

NOON = datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC)  # a Tuesday


def test_a_rate_fires_one_period_after_it_starts() -> None:
    assert next_fire("rate(1 minute)", NOON) == NOON + timedelta(minutes=1)
    assert next_fire("rate(2 hours)", NOON) == NOON + timedelta(hours=2)
    assert next_fire("rate(1 day)", NOON) == NOON + timedelta(days=1)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 8 * * ? *)", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),  # 08:00 has passed today
        ("cron(15 12 * * ? *)", datetime(2026, 11, 24, 12, 15, tzinfo=UTC)),
        ("cron(0/10 * * * ? *)", datetime(2026, 11, 24, 12, 10, tzinfo=UTC)),
        ("cron(0 9 ? * MON-FRI *)", datetime(2026, 11, 25, 9, 0, tzinfo=UTC)),
        ("cron(0 9 ? * 1 *)", datetime(2026, 11, 29, 9, 0, tzinfo=UTC)),  # day 1 is Sunday
        ("cron(0 0 1 JAN,JUL ? *)", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("cron(30 6 29 FEB ? 2028)", datetime(2028, 2, 29, 6, 30, tzinfo=UTC)),
    ],
)
def test_a_cron_fires_at_the_next_minute_its_fields_allow(expression: str, expected: datetime) -> None:
    assert next_fire(expression, NOON) == expected


def test_a_cron_whose_years_are_over_never_fires_again() -> None:
    assert next_fire("cron(0 8 * * ? 2025)", NOON) is None


def test_an_at_expression_fires_once() -> None:
    assert next_fire("at(2026-11-24T12:00:45)", NOON) == datetime(2026, 11, 24, 12, 0, 45, tzinfo=UTC)
    assert next_fire("at(2026-11-24T12:00:00)", NOON) is None


@pytest.mark.parametrize(
    "expression",
    ["cron(0 8 * * * *)", "cron(0 8 * *)", "cron(0 8 L * ? *)", "cron(61 8 * * ? *)", "rate(0 minutes)", "every day"],
)
def test_an_expression_aws_would_refuse_is_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        next_fire(expression, NOON)
