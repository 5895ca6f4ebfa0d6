"""
imageprovider._log
~~~~~~~~~~~~~~~~~~

The library's logger, and the fields every one of its records carries.

A formatter configured through ``logging.config.dictConfig`` (a Django
``LOGGING`` dict, say) names record attributes such as ``%(path)s``; a record
without one makes the logging module print a traceback instead of the line.
So every record from here carries every documented field, empty (``""``)
where it does not apply.
"""

import logging
from typing import Any, Dict

#: The library's logger (a ``NullHandler`` is attached in ``imageprovider/__init__.py``).
LOGGER = logging.getLogger("imageprovider")

#: Record attributes every record carries: one request cycle's, and the parameters of a request.
FIELDS = ("method", "path", "status", "attempts", "elapsed_ms", "request_id", "params")


def fields(**given: Any) -> Dict[str, Any]:
    """The ``extra=`` of a record: ``given``, and ``""`` for every other documented field."""
    unknown = set(given) - set(FIELDS)
    if unknown:
        raise ValueError(f"undocumented log record fields: {sorted(unknown)}")
    return {**dict.fromkeys(FIELDS, ""), **given}
