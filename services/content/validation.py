"""Field validation for content input; every failure names its proto field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.content.model import SCOPES, SEVERITIES, STANCES
from services.core.domains import DOMAINS
from services.core.validation import Violations, check_required_text, check_text, check_url


def check_choice(value: str, choices: Sequence[str], out: Violations, field: str) -> None:
    """One of `choices` (an unset or unknown enum arrives as "")."""
    if value not in choices:
        out.add(field, f"must be one of {', '.join(c.upper() for c in choices)}")


def check_domain(value: str, out: Violations, field: str = "domain") -> None:
    """One of the 15 domains."""
    if value not in DOMAINS:
        out.add(field, "must be one of the 15 domains")


def check_list(
    values: Sequence[str], out: Violations, field: str, *, max_items: int, max_length: int
) -> None:
    """At most `max_items` entries of at most `max_length` characters."""
    if len(values) > max_items:
        out.add(field, f"must have at most {max_items} entries")
        return
    for i, value in enumerate(values):
        check_text(value, out, f"{field}[{i}]", max_length)


def check_urls(values: Sequence[str], out: Violations, field: str, *, max_items: int) -> None:
    """At most `max_items` http(s) URLs."""
    if len(values) > max_items:
        out.add(field, f"must have at most {max_items} URLs")
        return
    for i, value in enumerate(values):
        check_url(value, out, f"{field}[{i}]")


def check_coordinates(latitude: float | None, longitude: float | None, out: Violations) -> None:
    """Both or neither; in range; finite."""
    if (latitude is None) != (longitude is None):
        out.add(
            "latitude" if latitude is None else "longitude", "latitude and longitude go together"
        )
        return
    if latitude is not None and not -90 <= latitude <= 90:
        out.add("latitude", "must be between -90 and 90")
    if longitude is not None and not -180 <= longitude <= 180:
        out.add("longitude", "must be between -180 and 180")


def problem_fields(fields: dict[str, Any], out: Violations, *, partial: bool) -> None:
    """Checks problem fields; with `partial`, only those present (not None)."""

    def present(name: str) -> bool:
        return not partial or fields.get(name) is not None

    if present("title"):
        check_required_text(fields["title"], out, "title", 10, 500)
    if present("description"):
        check_required_text(fields["description"], out, "description", 50, 10000)
    if present("domain"):
        check_domain(fields["domain"], out)
    if present("severity"):
        check_choice(fields["severity"], SEVERITIES, out, "severity")
    if present("geographic_scope"):
        check_choice(fields["geographic_scope"], SCOPES, out, "geographic_scope")
    if present("affected_population_estimate"):
        check_text(
            fields.get("affected_population_estimate") or "",
            out,
            "affected_population_estimate",
            100,
        )
    if present("location_name"):
        check_text(fields.get("location_name") or "", out, "location_name", 200)
    check_coordinates(fields.get("latitude"), fields.get("longitude"), out)


def stance(value: str, out: Violations) -> None:
    """A debate stance."""
    check_choice(value, STANCES, out, "stance")
