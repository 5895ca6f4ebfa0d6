"""
imageprovider._refresh
~~~~~~~~~~~~~~~~~~~~~~

Compares the model table with what ``GET /models`` says (``imageprovider
models --refresh``): image models the table does not know, and shutdown
dates that differ. The differences become an overlay file's entries, so the
table can follow the API without a release.
"""

import datetime
import re
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional

from .model_specs import ModelTable

#: Ids of image models among everything ``GET /models`` lists (text, audio...).
IMAGE_MODEL_PATTERN = re.compile(r"(gpt-image|chatgpt-image|dall-e)")
_SNAPSHOT = re.compile(r"(.+)-([0-9]{4}-[0-9]{2}-[0-9]{2})\Z")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Difference(NamedTuple):
    """One way the table and the API disagree about a model."""

    model: str
    #: ``"new"`` (the API lists it, the table does not know it), ``"shutdown"``
    #: (the dates differ) or ``"unlisted"`` (the table has it as usable, the API does not list it).
    kind: str
    #: The table's value and the API's (shutdown dates), as text.
    table: Optional[str]
    api: Optional[str]
    #: The overlay entry that makes the table agree, if any.
    entry: Optional[Dict[str, Any]]

    def __str__(self) -> str:
        if self.kind == "new":
            dated = f", shutdown date {self.api}" if self.api else ""
            based = " (a snapshot of {})".format(self.entry["like"]) if self.entry and "like" in self.entry else ""
            return f"new: {self.model}{based}{dated} is not in the table"
        if self.kind == "shutdown":
            return f"changed: {self.model} shutdown date is {self.table or 'none'} in the table, {self.api or 'none'} in the API"
        return f"not listed by the API: {self.model} (retired early, or not offered to this key)"


def shutdown_day(value: Any) -> Optional[str]:
    """A ``shutdown_date`` as the API sends it (``YYYY-MM-DD``, or a unix time) -> ``YYYY-MM-DD``."""
    if isinstance(value, str) and _DAY.match(value):
        return value[:10]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**40:
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).date().isoformat()
    return None


def compare(table: ModelTable, listed: Iterable[Mapping[str, Any]], today: datetime.date) -> List[Difference]:
    """What differs between ``table`` and the models the API ``listed``, in model order."""
    differences: List[Difference] = []
    seen = set()
    for model in listed:
        name = model.get("id")
        if not isinstance(name, str):
            continue
        seen.add(name)
        api_day = shutdown_day(model.get("shutdown_date"))
        spec = table.get(name)
        if spec is None:
            if not IMAGE_MODEL_PATTERN.search(name):
                continue
            entry: Dict[str, Any] = {}
            snapshot = _SNAPSHOT.match(name)
            if snapshot and snapshot.group(1) in table:
                entry.update(like=snapshot.group(1), snapshot_of=snapshot.group(1))
            if api_day:
                entry["shutdown_date"] = api_day
            differences.append(Difference(name, "new", None, api_day, entry))
        elif api_day is not None and api_day != spec.shutdown_date:
            differences.append(Difference(name, "shutdown", spec.shutdown_date, api_day, {"shutdown_date": api_day}))
    for name, spec in sorted(table.items()):
        if name not in seen and spec.status(today).state != "shut-down":
            differences.append(Difference(name, "unlisted", spec.shutdown_date, None, None))
    return sorted(differences, key=lambda difference: difference.model)


def overlay_entries(differences: Iterable[Difference]) -> Dict[str, Dict[str, Any]]:
    """The overlay entries that bring the table in line with the API."""
    return {difference.model: difference.entry for difference in differences if difference.entry is not None}
