"""Counts what the report is about; a real app would query its data store here."""

from datetime import UTC, datetime


def handler(event: dict, context: object) -> dict:
    return {"count": 42, "day": datetime.now(UTC).date().isoformat(), "source": event.get("source", "manual")}
