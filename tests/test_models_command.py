"""``imageprovider models``: the table with each model's status, ``--refresh`` against ``GET /v1/models``, ``--write``.

The command's "today" is pinned (``_models_command.utc_today``) so the
statuses are exact. ``--refresh`` runs against a mocked ``GET /v1/models``
listing a new image model, a snapshot of a known one, a changed shutdown date,
non-image models and leaving one table model out; the overlay ``--write``
makes then loads and brings the table in line. The README's table of models
is held to :func:`imageprovider._models_command.readme_table`.
"""

import calendar
import datetime
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import responses
from helpers import API_KEY, BASE_URL

from imageprovider import MODEL_SPECS, TABLE_CHECKED, OpenAIImageProvider, ResponseValidationError, cli
from imageprovider import _models_command as models_command
from imageprovider._refresh import compare, shutdown_day
from imageprovider.model_specs import builtin_table, load_overlay, utc_today

ROOT = Path(__file__).resolve().parent.parent
MODELS_URL = BASE_URL + "/models"
TODAY = datetime.date(2026, 12, 3)
SEPT_2027 = calendar.timegm((2027, 9, 1, 12, 0, 0))
LISTING: Dict[str, Any] = {
    "object": "list",
    "data": [
        {
            "id": "gpt-image-2",
            "object": "model",
            "created": 1776729600,
            "owned_by": "system",
            "shutdown_date": "2027-06-01",
        },
        {"id": "gpt-image-2-2026-04-21", "object": "model"},
        {"id": "gpt-image-2.5-flare"},
        {"id": "gpt-image-2.5-flare-2026-09-08"},
        {"id": "gpt-image-2.5-sunburst"},
        {"id": "gpt-image-2.6-flare", "shutdown_date": None},
        {"id": "gpt-image-2.6-sunburst", "shutdown_date": SEPT_2027},
        {"id": "gpt-image-2.6-flare-2026-11-04"},
        {"id": "gpt-image-3", "owned_by": "system"},
        {"id": "gpt-image-1.5", "shutdown_date": "2026-12-01"},
        {"id": "gpt-4o"},
        {"id": "text-embedding-3-small", "shutdown_date": "2026-12-31"},
        {"id": "whisper-1"},
    ],
}
DIFFERENCES = [
    "changed: gpt-image-2 shutdown date is none in the table, 2027-06-01 in the API",
    "not listed by the API: gpt-image-2.5-sunburst-2026-09-08 (retired early, or not offered to this key)",
    "new: gpt-image-2.6-flare-2026-11-04 (a snapshot of gpt-image-2.6-flare) is not in the table",
    "changed: gpt-image-2.6-sunburst shutdown date is none in the table, 2027-09-01 in the API",
    "new: gpt-image-3 is not in the table",
]


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_command, "utc_today", lambda: TODAY)


def run(capsys: Any, *argv: str) -> Tuple[int, str, str]:
    status = cli.main(["models", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def rows(out: str) -> Dict[str, List[str]]:
    """Model -> [status, from, replacement] from the text listing (columns are two spaces apart or more)."""
    table = {}
    for line in out.splitlines()[2:]:
        cells = [cell.strip() for cell in line.split("  ") if cell.strip()]
        table[cells[0].replace(" (default)", "")] = cells[1:]
    return table


def write_overlay(path: Path, models: Dict[str, Any]) -> str:
    path.write_text(json.dumps({"models": models}), encoding="utf-8")
    return str(path)


# -- listing ------------------------------------------------------------------------------------------


def test_models_lists_every_model_with_its_status_and_origin(capsys: Any) -> None:
    status, out, err = run(capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Model table checked {TABLE_CHECKED} (built-in); today is 2026-12-03 (UTC)"
    assert lines[1].split() == ["MODEL", "STATUS", "FROM", "REPLACEMENT"]
    listed = rows(out)
    assert set(listed) == set(MODEL_SPECS)
    assert lines[2].startswith("gpt-image-2 (default)  ")
    assert listed["gpt-image-2"] == ["active", "built-in"]
    assert listed["gpt-image-2.6-sunburst"] == ["active", "built-in"]
    assert listed["dall-e-3"] == ["shut down on 2026-05-12", "built-in"]
    assert listed["gpt-image-1"] == [
        "shut down on 2026-10-23",
        "built-in",
        "gpt-image-2.5-sunburst or gpt-image-2.5-flare",
    ]
    assert listed["chatgpt-image-latest"] == [
        "shut down on 2026-12-01",
        "built-in",
        "gpt-image-2.6-sunburst or gpt-image-2.6-flare",
    ]
    # Active models first, then by name.
    states = ["active" if cells[0] == "active" else "other" for cells in listed.values()]
    assert states == sorted(states)


def test_models_shows_an_overlay_its_dates_and_its_origin(
    capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_overlay(
        tmp_path / "models.json",
        {
            "gpt-image-2": {"shutdown_date": "2027-03-01", "replacements": ["gpt-image-3"]},
            "gpt-image-3": {"like": "gpt-image-2.6-flare"},
        },
    )
    for how in ("--models-file", "IMAGEPROVIDER_MODELS"):
        if how == "IMAGEPROVIDER_MODELS":
            monkeypatch.setenv("IMAGEPROVIDER_MODELS", path)
            status, out, err = run(capsys)
        else:
            status, out, err = run(capsys, "--models-file", path)
        assert (status, err) == (0, "")
        assert out.splitlines()[0] == (
            f"Model table checked {TABLE_CHECKED} (built-in); overlay {path}; today is 2026-12-03 (UTC)"
        )
        listed = rows(out)
        assert listed["gpt-image-2"] == ["shutting down on 2027-03-01", path, "gpt-image-3"]
        assert listed["gpt-image-3"] == ["active", path]
        assert listed["gpt-image-2.6-flare"] == ["active", "built-in"]
        assert set(listed) == set(MODEL_SPECS) | {"gpt-image-3"}


def test_models_json_lists_the_same(capsys: Any, tmp_path: Path) -> None:
    path = write_overlay(tmp_path / "models.json", {"gpt-image-2": {"shutdown_date": "2027-03-01"}})
    status, out, _ = run(capsys, "--json", "--models-file", path)
    assert status == 0
    document = json.loads(out)
    assert {key: document[key] for key in ("checked", "overlay_file", "today", "default_model")} == {
        "checked": TABLE_CHECKED,
        "overlay_file": path,
        "today": "2026-12-03",
        "default_model": "gpt-image-2",
    }
    by_name = {row["model"]: row for row in document["models"]}
    assert set(by_name) == set(MODEL_SPECS)
    assert by_name["gpt-image-2"] == {
        "model": "gpt-image-2",
        "default": True,
        "status": "shutting down on 2027-03-01",
        "state": "shutting-down",
        "shutdown_date": "2027-03-01",
        "replacements": [],
        "from": path,
        "released": "2026-04-21",
        "snapshot_of": None,
    }
    assert by_name["gpt-image-1.5-2025-12-16"]["state"] == "shut-down"
    assert by_name["gpt-image-1.5-2025-12-16"]["snapshot_of"] == "gpt-image-1.5"
    assert by_name["gpt-image-2.6-flare"]["from"] == "built-in"


def test_models_with_a_bad_overlay_exits_2_naming_it(capsys: Any, tmp_path: Path) -> None:
    path = write_overlay(tmp_path / "models.json", {"gpt-image-3": {"like": "gpt-image-99"}})
    status, out, err = run(capsys, "--models-file", path)
    assert (status, out) == (cli.EXIT_USAGE, "")
    assert f"ConfigurationError: Models file {path!r}: entry 'gpt-image-3'" in err


# -- --refresh ---------------------------------------------------------------------------------------------


def test_list_models_asks_get_models(mocked: Any) -> None:
    mocked.add(responses.GET, MODELS_URL, json=LISTING)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        listed = provider.list_models()
    assert listed == LISTING["data"]
    request = mocked.calls[0].request
    assert (request.method, request.url) == ("GET", MODELS_URL)
    assert request.headers["Authorization"] == "Bearer " + API_KEY


@pytest.mark.parametrize("body", [{"object": "list"}, {"data": [{"object": "model"}]}, {"data": [{"id": 5}]}])
def test_an_off_schema_model_list_is_a_response_validation_error(mocked: Any, body: Dict[str, Any]) -> None:
    mocked.add(responses.GET, MODELS_URL, json=body)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(ResponseValidationError):
            provider.list_models()


def test_shutdown_day_reads_a_day_or_a_unix_time() -> None:
    assert shutdown_day("2027-06-01") == "2027-06-01"
    assert shutdown_day("2027-06-01T00:00:00Z") == "2027-06-01"
    assert shutdown_day(SEPT_2027) == "2027-09-01"
    for value in (None, True, "June", -1, 1.5):
        assert shutdown_day(value) is None


def test_refresh_prints_what_the_api_says_differently(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.GET, MODELS_URL, json=LISTING)
    status, out, err = run(capsys, "--refresh")
    assert (status, err) == (0, "")
    assert out.splitlines() == DIFFERENCES
    assert len(mocked.calls) == 1
    assert not list(cli_env.iterdir())  # nothing written without --write


def test_refresh_json(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.GET, MODELS_URL, json=LISTING)
    status, out, _ = run(capsys, "--refresh", "--json")
    assert status == 0
    assert json.loads(out) == [
        {
            "model": "gpt-image-2",
            "kind": "shutdown",
            "table": None,
            "api": "2027-06-01",
            "entry": {"shutdown_date": "2027-06-01"},
        },
        {"model": "gpt-image-2.5-sunburst-2026-09-08", "kind": "unlisted", "table": None, "api": None, "entry": None},
        {
            "model": "gpt-image-2.6-flare-2026-11-04",
            "kind": "new",
            "table": None,
            "api": None,
            "entry": {"like": "gpt-image-2.6-flare", "snapshot_of": "gpt-image-2.6-flare"},
        },
        {
            "model": "gpt-image-2.6-sunburst",
            "kind": "shutdown",
            "table": None,
            "api": "2027-09-01",
            "entry": {"shutdown_date": "2027-09-01"},
        },
        {"model": "gpt-image-3", "kind": "new", "table": None, "api": None, "entry": {}},
    ]


def test_refresh_write_makes_an_overlay_that_brings_the_table_in_line(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.GET, MODELS_URL, json=LISTING)
    target = cli_env / "overlay.json"
    status, out, err = run(capsys, "--refresh", "--write", str(target))
    assert (status, err) == (0, "")
    assert out.splitlines() == DIFFERENCES + [f"wrote {target}"]
    assert json.loads(target.read_text(encoding="utf-8")) == {
        "checked": "2026-12-03",
        "models": {
            "gpt-image-2": {"shutdown_date": "2027-06-01"},
            "gpt-image-2.6-flare-2026-11-04": {"like": "gpt-image-2.6-flare", "snapshot_of": "gpt-image-2.6-flare"},
            "gpt-image-2.6-sunburst": {"shutdown_date": "2027-09-01"},
            "gpt-image-3": {},
        },
    }
    table = load_overlay(str(target))
    assert table["gpt-image-2"].shutdown_date == "2027-06-01"
    assert table["gpt-image-2"].qualities == MODEL_SPECS["gpt-image-2"].qualities
    snapshot = table["gpt-image-2.6-flare-2026-11-04"]
    assert snapshot.values == MODEL_SPECS["gpt-image-2.6-flare"].values
    assert snapshot.snapshot_of == "gpt-image-2.6-flare"
    assert table["gpt-image-3"].params is None  # nothing known yet: shape checks only
    # Only what an overlay cannot fix is left: a table model the API does not list.
    left = compare(table, LISTING["data"], TODAY)
    assert [(difference.model, difference.kind) for difference in left] == [
        ("gpt-image-2.5-sunburst-2026-09-08", "unlisted")
    ]
    status, out, _ = run(capsys, "--refresh", "--models-file", str(target))
    assert (status, out.splitlines()) == (0, [DIFFERENCES[1]])
    assert MODEL_SPECS["gpt-image-2"].shutdown_date is None


def test_refresh_write_merges_into_an_existing_overlay(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.GET, MODELS_URL, json=LISTING)
    target = cli_env / "overlay.json"
    write_overlay(
        target,
        {
            "house-model": {"like": "gpt-image-2", "notes": "ours"},
            "gpt-image-2": {"notes": "kept", "shutdown_date": "2027-01-01"},
        },
    )
    status, _, err = run(capsys, "--refresh", "--write", str(target))
    assert status == 0, err
    models = json.loads(target.read_text(encoding="utf-8"))["models"]
    assert models["house-model"] == {"like": "gpt-image-2", "notes": "ours"}
    assert models["gpt-image-2"] == {"notes": "kept", "shutdown_date": "2027-06-01"}
    assert set(models) == {
        "house-model",
        "gpt-image-2",
        "gpt-image-2.6-flare-2026-11-04",
        "gpt-image-2.6-sunburst",
        "gpt-image-3",
    }
    load_overlay(str(target))


def test_refresh_write_will_not_build_on_a_bad_overlay(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.GET, MODELS_URL, json=LISTING)
    target = cli_env / "overlay.json"
    target.write_text("{broken", encoding="utf-8")
    status, _, err = run(capsys, "--refresh", "--write", str(target))
    assert status == cli.EXIT_USAGE
    assert "is not valid JSON" in err
    assert target.read_text(encoding="utf-8") == "{broken"


def test_write_without_refresh_exits_2(mocked: Any, cli_env: Path, capsys: Any) -> None:
    status, out, err = run(capsys, "--write", "overlay.json")
    assert (status, out) == (cli.EXIT_USAGE, "")
    assert "--write needs --refresh" in err
    assert not (cli_env / "overlay.json").exists()
    assert len(mocked.calls) == 0


def test_refresh_against_the_stand_in_agrees(capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in: it lists the table's models that are not shut down, with their shutdown dates."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models_command, "utc_today", utc_today)  # the stand-in's clock is the real one
    status, out, err = run(capsys, "--refresh", "--fake")
    assert (status, err) == (0, "")
    assert out.splitlines() == ["The model table agrees with the API."]


# -- the README ----------------------------------------------------------------------------------------------


def test_the_readme_models_table_is_generated_from_the_table() -> None:
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    start = readme.index(".. models-table-start\n") + len(".. models-table-start\n")
    end = readme.index(".. models-table-end\n")
    assert readme[start:end].strip("\n") + "\n" == models_command.readme_table()
    assert f"Status on {TABLE_CHECKED}" in models_command.readme_table(builtin_table())
