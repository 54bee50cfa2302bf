"""When EventBridge and EventBridge Scheduler fire: ``rate(...)``, ``cron(...)`` and ``at(...)`` expressions.

AWS's cron has six fields, ``minutes hours day-of-month month day-of-week year``, in UTC; one of the two
day fields is ``?``, and day-of-week counts 1-7 from Sunday. ``L``, ``W`` and ``#`` are not supported
locally and raise ``ValueError``, as does anything else AWS would refuse.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
_MONTHS = {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                                        "DEC"], 1)}  # fmt: skip
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
# (lowest, highest, names) of each cron field.
_FIELDS = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (1, 7, _DAYS), (1970, 2199, {})]


def _values(field: str, lowest: int, highest: int, names: dict[str, int]) -> set[int] | None:
    """The values one cron field allows; None for ``*`` and ``?`` (any)."""
    if field in ("*", "?"):
        return None
    allowed: set[int] = set()
    for part in field.split(","):
        spec, _, step = part.partition("/")
        if spec == "*":
            start, end = lowest, highest
        else:
            first, _, last = spec.partition("-")
            start = _number(first, names, field)
            end = _number(last, names, field) if last else (highest if step else start)
        if not lowest <= start <= end <= highest or (step and int(step) < 1):
            raise ValueError(f"cron field {field!r} is out of range {lowest}-{highest}")
        allowed.update(range(start, end + 1, int(step) if step else 1))
    return allowed


def _number(token: str, names: dict[str, int], field: str) -> int:
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise ValueError(f"cron field {field!r}: {token!r} is not a number or name (L, W and # are not supported)")
    return int(token)


def _cron_matches(fields: list[set[int] | None], moment: datetime) -> bool:
    minute, hour, day, month, weekday, year = fields
    sunday_first = moment.isoweekday() % 7 + 1  # Python: Monday 1 .. Sunday 7; cron: Sunday 1 .. Saturday 7
    checks = [(minute, moment.minute), (hour, moment.hour), (day, moment.day), (month, moment.month),
              (weekday, sunday_first), (year, moment.year)]  # fmt: skip
    return all(allowed is None or value in allowed for allowed, value in checks)


def next_fire(expression: str, after: datetime) -> datetime | None:
    """The first time after ``after`` (UTC) that the expression fires, or None when it never fires again.

    A rate fires one period after ``after``: EventBridge starts a rate's clock when the rule is created.
    """
    after = after.astimezone(UTC)
    if match := _RATE.match(expression):
        amount, unit = int(match.group(1)), match.group(2).rstrip("s")
        if amount < 1:
            raise ValueError(f"{expression}: the rate must be at least 1")
        return after + timedelta(**{f"{unit}s": amount})
    if match := _AT.match(expression):
        moment = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
        return moment if moment > after else None
    if match := _CRON.match(expression):
        parts = match.group(1).split()
        if len(parts) != 6:
            raise ValueError(f"{expression}: AWS cron takes six fields (minutes hours day month weekday year)")
        if "?" not in (parts[2], parts[4]):
            raise ValueError(f"{expression}: one of day-of-month and day-of-week must be ?")
        fields = [_values(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        # Minute by minute, skipping days that cannot match; a cron that never fires ends with the year field.
        while moment.year <= 2199:
            if fields[5] is not None and moment.year > max(fields[5]):
                return None
            if _cron_matches([None, None, *fields[2:]], moment):
                if _cron_matches(fields, moment):
                    return moment
                moment += timedelta(minutes=1)
            else:
                moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
        return None
    raise ValueError(f"{expression!r} is not a rate(), cron() or at() expression")
