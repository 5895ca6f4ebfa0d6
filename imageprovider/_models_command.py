"""
imageprovider._models_command
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

``imageprovider models``: every model the table knows, its status (active,
shutting down on a date, shut down on a date) and where its entry came from;
with ``--refresh``, what ``GET /v1/models`` says differently, and with
``--write FILE``, those differences as an overlay file.
"""

import argparse
import datetime
import json
import os
from typing import IO, Any, Dict, List, Optional, Tuple

from . import _files
from ._config import resolve_settings
from ._refresh import compare, overlay_entries
from .exceptions import ConfigurationError
from .model_specs import DEFAULT_MODEL, ModelSpec, ModelTable, builtin_table, load_overlay, utc_today
from .provider import OpenAIImageProvider

_STATE_ORDER = {"active": 0, "shutting-down": 1, "shut-down": 2}


def _table(models_file: Optional[str]) -> Tuple[ModelTable, str]:
    """The table and the default model that the settings (argument, environment, config file) give."""
    settings = resolve_settings(require_api_key=False, models_file=models_file)
    table = load_overlay(settings.models_file) if settings.models_file else builtin_table()
    return table, settings.default_model


def describe(table: ModelTable, default_model: str = DEFAULT_MODEL) -> List[Dict[str, Any]]:
    """Every model of ``table`` with its status today, active ones first."""
    today = utc_today()
    rows = []
    for name, spec in table.items():
        status = spec.status(today)
        rows.append(
            {
                "model": name,
                "default": name == default_model,
                "status": str(status),
                "state": status.state,
                "shutdown_date": spec.shutdown_date,
                "replacements": list(spec.replacements),
                "from": spec.origin,
                "released": spec.released,
                "snapshot_of": spec.snapshot_of,
            }
        )
    return sorted(rows, key=lambda row: (_STATE_ORDER[row["state"]], row["model"]))


def readme_table(table: Optional[ModelTable] = None) -> str:
    """The README's table of models, as reStructuredText, with each model's status on the day the table was checked.

    Regenerate it with ``python -c "from imageprovider._models_command import readme_table; print(readme_table())"``;
    a test holds the README to it.
    """
    table = table if table is not None else builtin_table()
    day = datetime.date.fromisoformat(table.checked)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Model",
        f"     - Status on {table.checked}",
        "     - ``quality``",
        "     - ``output_format``",
        "     - Instead, use",
    ]
    order = sorted(table.items(), key=lambda item: (_STATE_ORDER[item[1].status(day).state], item[0]))
    for name, spec in order:
        status = spec.status(day)
        default = " (default)" if name == DEFAULT_MODEL else ""
        lines += [
            f"   * - ``{name}``{default}",
            f"     - {status}",
            "     - " + _values(spec, "quality"),
            "     - " + _values(spec, "output_format"),
            "     - " + (", ".join(f"``{other}``" for other in spec.replacements) if status.state != "active" else ""),
        ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _values(spec: ModelSpec, param: str) -> str:
    if spec.params is not None and param not in spec.accepted_params("generations"):
        return "not taken"
    values = spec.values.get(param)
    return "unknown" if values is None else ", ".join(sorted(values))


def list_models(args: argparse.Namespace, out: IO[str]) -> int:
    """Print the table; returns the exit status."""
    table, default_model = _table(args.models_file)
    rows = describe(table, default_model)
    if args.json:
        document = {
            "checked": table.checked,
            "overlay_file": table.overlay_file,
            "today": utc_today().isoformat(),
            "default_model": default_model,
            "models": rows,
        }
        print(json.dumps(document, indent=2), file=out)
        return 0
    overlay = f"; overlay {table.overlay_file}" if table.overlay_file else ""
    print(
        f"Model table checked {table.checked} (built-in){overlay}; today is {utc_today().isoformat()} (UTC)", file=out
    )
    width = max(len(row["model"] + (" (default)" if row["default"] else "")) for row in rows)
    print(f"{'MODEL':<{width}}  {'STATUS':<26}  {'FROM':<9}  REPLACEMENT", file=out)
    for row in rows:
        name = row["model"] + (" (default)" if row["default"] else "")
        replacement = " or ".join(row["replacements"]) if row["state"] != "active" else ""
        print(f"{name:<{width}}  {row['status']:<26}  {row['from']:<9}  {replacement}".rstrip(), file=out)
    return 0


def refresh_models(args: argparse.Namespace, provider: OpenAIImageProvider, out: IO[str]) -> int:
    """Compare the table with ``GET /models``, print the differences, write them with ``--write``."""
    differences = compare(provider.models, provider.list_models(), utc_today())
    if args.json:
        print(json.dumps([difference._asdict() for difference in differences], indent=2), file=out)
    elif not differences:
        print("The model table agrees with the API.", file=out)
    for difference in differences if not args.json else ():
        print(difference, file=out)
    if args.write is not None:
        _write_overlay(args.write, overlay_entries(differences))
        if not args.json:
            print(f"wrote {args.write}", file=out)
    return 0


def _write_overlay(path: str, entries: Dict[str, Dict[str, Any]]) -> None:
    document: Dict[str, Any] = {"models": {}}
    if os.path.exists(path):
        # An overlay already there keeps its other entries; checked first, so a bad file is not built upon.
        load_overlay(path)
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    models = document.setdefault("models", {})
    for name, entry in entries.items():
        models[name] = {**models.get(name, {}), **entry}
    document["checked"] = utc_today().isoformat()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    try:
        _files.write_atomic(path, text.encode("utf-8"), overwrite=True)
    except OSError as exc:
        raise ConfigurationError(f"Cannot write the models file {path!r}: {exc.strerror or exc}") from None
