"""The model table (``imageprovider/models.json``) as of 2026-12-03, shutdown dates, and overlay files.

The request schemas check shape and types only; every value list lives in
the table, and each is reachable: a value the table lists is sent unchanged.
Shut-down models are refused before anything is sent, by every method; a
model with a shutdown date ahead warns once per process. Overlays (argument,
``IMAGEPROVIDER_MODELS``, the config file) change a provider's table, never
:data:`imageprovider.MODEL_SPECS`.

Tests of the shutdown warning call :func:`imageprovider._rules.forget_shutdown_warnings`
first (it is issued once per model per process) and catch it with
``pytest.warns``, since setup.cfg ignores it for the rest of the suite.
"""

import datetime
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import jsonschema
import pytest
import responses
from helpers import API_KEY, BASE_URL, BEFORE_SHUTDOWNS, GENERATIONS_URL, images_body, make_png, multipart_parts
from scripted_server import Reply, ScriptedServer

from imageprovider import (
    DEFAULT_MODEL,
    MODEL_SPECS,
    TABLE_CHECKED,
    AzureOpenAIImageProvider,
    ConfigurationError,
    ModelShutdownWarning,
    OpenAIImageProvider,
    RequestValidationError,
    _rules,
    cli,
)
from imageprovider.batch import BatchItem, run_batch, run_batch_api
from imageprovider.batch._batch_api import request_line
from imageprovider.model_specs import BUILTIN, builtin_table, load_overlay

ROOT = Path(__file__).resolve().parent.parent
EDITS_URL = BASE_URL + "/images/edits"
VARIATIONS_URL = BASE_URL + "/images/variations"
REQUEST_SCHEMAS = (
    "create_image_request",
    "create_image_edit_request",
    "edit_image_body_json_param",
    "create_image_variation_request",
)
PNG4 = make_png(4, 4)
DAY = datetime.timedelta(days=1)

NEW_MODELS = (
    "gpt-image-2.5-flare",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-flare-2026-09-08",
    "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.6-flare",
    "gpt-image-2.6-sunburst",
)
SNAPSHOTS = {
    "gpt-image-2-2026-04-21": "gpt-image-2",
    "gpt-image-2.5-flare-2026-09-08": "gpt-image-2.5-flare",
    "gpt-image-2.5-sunburst-2026-09-08": "gpt-image-2.5-sunburst",
    "gpt-image-1.5-2025-12-16": "gpt-image-1.5",
}
TO_26 = ("gpt-image-2.6-sunburst", "gpt-image-2.6-flare")
#: Model -> (shutdown date, announced, replacements), from api-facts §9.1.
SHUT_DOWN = {
    "dall-e-2": ("2026-05-12", None, ()),
    "dall-e-3": ("2026-05-12", None, ()),
    "gpt-image-1": ("2026-10-23", "2026-04-22", ("gpt-image-2.5-sunburst", "gpt-image-2.5-flare")),
    "gpt-image-1.5": ("2026-12-01", "2026-06-02", TO_26),
    "gpt-image-1.5-2025-12-16": ("2026-12-01", "2026-06-02", TO_26),
    "gpt-image-1-mini": ("2026-12-01", "2026-06-02", TO_26),
    "chatgpt-image-latest": ("2026-12-01", "2026-06-02", TO_26),
}


# -- helpers ----------------------------------------------------------------------------


def day(iso: str) -> datetime.date:
    return datetime.date(*map(int, iso.split("-")))


def sent_json(mocked: responses.RequestsMock, index: int = 0) -> Dict[str, Any]:
    body = json.loads(mocked.calls[index].request.body)
    assert isinstance(body, dict)
    return body


def text_parts(request: Any) -> Dict[str, str]:
    """The text parts of a multipart request, by name."""
    return {
        name: payload.decode("utf-8") for name, filename, _, payload in multipart_parts(request) if filename is None
    }


def write_json(path: Path, document: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def shutdown_warnings(caught: Sequence[warnings.WarningMessage]) -> List[str]:
    return [str(item.message) for item in caught if issubclass(item.category, ModelShutdownWarning)]


@pytest.fixture
def fresh_warnings() -> Iterator[None]:
    """Every model may warn again (the warning is once per model per process)."""
    _rules.forget_shutdown_warnings()
    yield
    _rules.forget_shutdown_warnings()


def walk(node: Any, path: Tuple[Any, ...] = ()) -> Iterator[Tuple[Tuple[Any, ...], str, Any]]:
    """Every (path, key, value) of every object in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, path + (index,))


# -- the request schemas hold no model-dependent values ------------------------------------


@pytest.mark.parametrize("name", REQUEST_SCHEMAS)
def test_request_schema_holds_no_value_list(name: str) -> None:
    """No enum or const anywhere: every value list is the model table's."""
    schema = json.loads((ROOT / "schemas" / (name + ".json")).read_text(encoding="utf-8"))
    lists = [path + (key,) for path, key, _ in walk(schema) if key in ("enum", "const")]
    assert lists == []


@pytest.mark.parametrize("name", REQUEST_SCHEMAS)
def test_request_schema_holds_no_model_limit(name: str) -> None:
    """n and partial_images have no maximum, prompt no maxLength: the table's limits depend on the model."""
    properties = json.loads((ROOT / "schemas" / (name + ".json")).read_text(encoding="utf-8"))["properties"]
    for param in ("n", "partial_images"):
        assert "maximum" not in properties.get(param, {}), param
    assert "maxLength" not in properties.get("prompt", {})


# -- every value list of the table is reachable ---------------------------------------------


def taking_endpoint(name: str, param: str) -> Optional[str]:
    """The first endpoint (generations, then edits) on which the model takes ``param``."""
    spec = MODEL_SPECS[name]
    for endpoint in ("generations", "edits"):
        if endpoint in spec.endpoints and (param in spec.accepted_params(endpoint) or param in spec.unknown_params):
            return endpoint
    return None


def format_requirements(output_format: str) -> Dict[str, Any]:
    """What an output format requires (``svg.model`` for SVG), as keyword arguments."""
    fmt = builtin_table().formats.get(output_format)
    kwargs: Dict[str, Any] = {}
    for dotted in fmt.requires if fmt is not None else ():
        parts = dotted.split(".")
        node = kwargs
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = "gpt-5"
    return kwargs


VALUE_CASES = [
    (name, endpoint, param, value)
    for name, spec in sorted(MODEL_SPECS.items())
    for param, values in sorted(spec.values.items())
    for endpoint in [taking_endpoint(name, param)]
    if endpoint is not None
    for value in sorted(values)
]


def test_value_cases_cover_every_model_and_the_new_values() -> None:
    """The cases below reach every model, and among them the values new in 2.5 and 2.6."""
    assert {case[0] for case in VALUE_CASES} == set(MODEL_SPECS)
    for case in [
        ("gpt-image-2.5-flare", "generations", "quality", "xhigh"),
        ("gpt-image-2.5-sunburst-2026-09-08", "generations", "quality", "max"),
        ("gpt-image-2.6-flare", "generations", "output_format", "gif"),
        ("gpt-image-2.6-sunburst", "generations", "output_format", "svg"),
        ("gpt-image-2.6-sunburst", "generations", "complexity", "medium"),
        ("gpt-image-1", "edits", "input_fidelity", "low"),
        ("dall-e-3", "generations", "style", "natural"),
    ]:
        assert case in VALUE_CASES


@pytest.mark.parametrize("model, endpoint, param, value", VALUE_CASES)
def test_every_value_of_the_table_is_sent_unchanged(
    mocked: Any, model: str, endpoint: str, param: str, value: str
) -> None:
    """Each value a model's entry lists goes out as given, on an endpoint that takes the parameter."""
    kwargs: Dict[str, Any] = {"model": model, param: value}
    if param == "output_format":
        kwargs.update(format_requirements(value))
    with OpenAIImageProvider(api_key=API_KEY, clock=BEFORE_SHUTDOWNS) as provider:
        if endpoint == "generations":
            mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
            provider.generate_image("A lighthouse", **kwargs)
            assert sent_json(mocked)[param] == value
        else:
            mocked.add(responses.POST, EDITS_URL, json=images_body())
            provider.edit_image("A lighthouse", PNG4, **kwargs)
            assert text_parts(mocked.calls[0].request)[param] == value
    assert len(mocked.calls) == 1


def test_a_model_the_table_does_not_know_gets_shape_checks_only(mocked: Any) -> None:
    """No value list, limit or format rule applies to an unknown model: all of this is sent as given."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    kwargs = {
        "model": "gpt-image-9",
        "n": 50,
        "size": "7x7",
        "quality": "ultra",
        "background": "glass",
        "output_format": "tiff",
        "output_compression": 40,
        "complexity": "baroque",
        "frame_count": 1,
        "frame_duration_ms": 1,
        "style": "cubist",
        "svg": {"model": "x"},
    }
    prompt = "p" * 40_000
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        provider.generate_image(prompt, **kwargs)
    assert sent_json(mocked) == dict(kwargs, prompt=prompt)


@pytest.mark.parametrize(
    "kwargs, param",
    [({"n": 0}, "n"), ({"quality": 5}, "quality"), ({"frame_count": "9"}, "frame_count"), ({"svg": "x"}, "svg")],
)
def test_an_unknown_model_still_gets_shape_checks(mocked: Any, kwargs: Dict[str, Any], param: str) -> None:
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image("x", model="gpt-image-9", **kwargs)
    assert caught.value.param == param
    assert len(mocked.calls) == 0


def test_check_model_rules_false_lets_any_well_typed_value_through(mocked: Any) -> None:
    """Values, n, format rules and shutdown dates are all off; gpt-image-2 is sent a GIF with 50 frames."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    kwargs = {"n": 50, "quality": "ultra", "output_format": "gif", "frame_count": 50, "complexity": "x", "size": "7x7"}
    with OpenAIImageProvider(api_key=API_KEY, check_model_rules=False, clock=day("2027-01-01")) as provider:
        provider.generate_image("x", **kwargs)
        provider.generate_image("x", model="dall-e-3", style="cubist")
        provider.edit_image("x", PNG4, model="gpt-image-2", input_fidelity="high", output_format="svg")
    assert sent_json(mocked, 0) == dict(kwargs, prompt="x", model="gpt-image-2")
    assert sent_json(mocked, 1) == {"prompt": "x", "model": "dall-e-3", "style": "cubist"}
    parts = text_parts(mocked.calls[2].request)
    assert (parts["input_fidelity"], parts["output_format"]) == ("high", "svg")


def test_extra_body_known_fields_are_type_checked_not_value_checked(mocked: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    extra = {"quality": "ultra", "output_format": "gif", "frame_count": 99, "brand_new": {"a": [1]}}
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        provider.generate_image("x", extra_body=extra)
        for field, value in (("quality", 5), ("frame_count", "nine"), ("svg", [])):
            with pytest.raises(RequestValidationError) as caught:
                provider.generate_image("x", extra_body={field: value})
            assert caught.value.param == field
    assert len(mocked.calls) == 1
    assert sent_json(mocked) == dict(extra, prompt="x", model="gpt-image-2")


# -- the table as of 2026-12-03 -----------------------------------------------------------------


def test_the_table_was_checked_on_2026_12_03_and_the_default_is_gpt_image_2(mocked: Any) -> None:
    assert TABLE_CHECKED == "2026-12-03"
    assert builtin_table().checked == TABLE_CHECKED
    assert DEFAULT_MODEL == "gpt-image-2"
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.default_model == "gpt-image-2"
        provider.generate_image("x")
    assert sent_json(mocked)["model"] == "gpt-image-2"


def test_the_new_models_and_their_snapshots() -> None:
    for name in NEW_MODELS:
        spec = MODEL_SPECS[name]
        assert spec.shutdown_date is None
        assert spec.released == ("2026-09-08" if "2.5" in name else "2026-11-04")
    assert {name: spec.snapshot_of for name, spec in MODEL_SPECS.items() if spec.snapshot_of} == SNAPSHOTS
    # No bare 2.5 or 2.6 id, and no new -latest alias (api-facts §9.1).
    for missing in ("gpt-image-2.5", "gpt-image-2.6", "gpt-image-latest", "gpt-image-2.6-latest"):
        assert missing not in MODEL_SPECS
    assert [name for name in MODEL_SPECS if name.endswith("-latest")] == ["chatgpt-image-latest"]


@pytest.mark.parametrize("model", sorted(MODEL_SPECS))
def test_quality_values(model: str) -> None:
    expected = {
        "dall-e-2": {"standard", "auto"},
        "dall-e-3": {"standard", "hd", "auto"},
    }.get(model, {"low", "medium", "high", "auto"})
    if model.startswith(("gpt-image-2.5", "gpt-image-2.6")):
        expected = {"low", "medium", "high", "xhigh", "max", "auto"}
    assert MODEL_SPECS[model].qualities == expected


@pytest.mark.parametrize("model", sorted(MODEL_SPECS))
def test_gif_and_svg_are_only_gpt_image_2_6_formats(model: str) -> None:
    formats = MODEL_SPECS[model].values.get("output_format", frozenset())
    if model.startswith("gpt-image-2.6"):
        assert formats == {"png", "jpeg", "webp", "gif", "svg"}
        assert MODEL_SPECS[model].values["complexity"] == {"low", "medium", "high"}
    else:
        assert not formats & {"gif", "svg"}
        assert "complexity" not in MODEL_SPECS[model].values


@pytest.mark.parametrize("model", NEW_MODELS)
def test_new_models_take_transparent_backgrounds_and_custom_sizes(mocked: Any, model: str) -> None:
    assert MODEL_SPECS[model].custom_size == MODEL_SPECS["gpt-image-2"].custom_size is not None
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        provider.generate_image("x", model=model, background="transparent", output_format="webp", size="3840x1280")
        for size in ("3856x1280", "1000x1000", "512x512", "3840x1264"):
            with pytest.raises(RequestValidationError) as caught:
                provider.generate_image("x", model=model, size=size)
            assert caught.value.param == "size"
    assert len(mocked.calls) == 1
    assert sent_json(mocked) == {
        "prompt": "x",
        "model": model,
        "size": "3840x1280",
        "background": "transparent",
        "output_format": "webp",
    }


@pytest.mark.parametrize("model", sorted(SHUT_DOWN))
def test_retired_models_keep_their_dates_and_replacements(model: str) -> None:
    shutdown, announced, replacements = SHUT_DOWN[model]
    spec = MODEL_SPECS[model]
    assert (spec.shutdown_date, spec.announced, spec.replacements) == (shutdown, announced, replacements)
    assert spec.retired == shutdown
    assert str(spec.status(day(TABLE_CHECKED))) == f"shut down on {shutdown}"
    assert str(spec.status(day(shutdown) - DAY)) == f"shutting down on {shutdown}"


def test_the_models_still_served_have_no_shutdown_date() -> None:
    active = sorted(name for name, spec in MODEL_SPECS.items() if spec.shutdown_date is None)
    assert active == sorted(("gpt-image-2", "gpt-image-2-2026-04-21") + NEW_MODELS)
    assert MODEL_SPECS["gpt-image-2"].batch_api is True


@pytest.mark.parametrize("model", NEW_MODELS)
def test_input_fidelity_is_let_through_for_2_5_and_2_6(mocked: Any, model: str) -> None:
    """Whether 2.5 and 2.6 take it is unknown, so it is sent."""
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        provider.edit_image("x", PNG4, model=model, input_fidelity="high")
    assert text_parts(mocked.calls[0].request)["input_fidelity"] == "high"


def test_input_fidelity_is_refused_for_gpt_image_2(mocked: Any) -> None:
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        for call in (
            lambda: provider.edit_image("x", PNG4, model="gpt-image-2", input_fidelity="high"),
            lambda: provider.edit_image_from_refs(
                "x", [{"file_id": "file-1"}], model="gpt-image-2-2026-04-21", input_fidelity="low"
            ),
        ):
            with pytest.raises(RequestValidationError) as caught:
                call()
            assert caught.value.param == "input_fidelity"
    assert len(mocked.calls) == 0


def test_models_json_validates_against_its_schema() -> None:
    schema = json.loads((ROOT / "schemas" / "model_table.json").read_text(encoding="utf-8"))
    table = json.loads((ROOT / "imageprovider" / "models.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [error.message for error in jsonschema.Draft7Validator(schema).iter_errors(table)]
    assert errors == []
    assert table["checked"] == TABLE_CHECKED


def test_every_entry_and_format_names_its_source() -> None:
    table = json.loads((ROOT / "imageprovider" / "models.json").read_text(encoding="utf-8"))
    for name, entry in table["models"].items():
        assert isinstance(entry.get("source"), str) and entry["source"].strip(), name
        assert MODEL_SPECS[name].source == entry["source"]
        assert MODEL_SPECS[name].origin == BUILTIN
    for name, entry in table["formats"].items():
        assert entry.get("source"), name
    assert set(table["models"]) == set(MODEL_SPECS)


# -- shutdowns ------------------------------------------------------------------------------------


def _batch_item(provider: OpenAIImageProvider, model: str, tmp_path: Path) -> Any:
    return request_line(provider, BatchItem("item-1", "x", {"model": model}, (), None, 1))


def _batch_edit_item(provider: OpenAIImageProvider, model: str, tmp_path: Path) -> Any:
    image = tmp_path / "in.png"
    image.write_bytes(PNG4)
    return request_line(provider, BatchItem("item-2", "x", {"model": model}, (str(image),), None, 1))


def _stream(method: str) -> Callable[..., Any]:
    def call(provider: OpenAIImageProvider, model: str, tmp_path: Path) -> Any:
        if method == "stream_image":
            return provider.stream_image("x", model=model)
        return provider.stream_edit("x", PNG4, model=model)

    return call


METHODS: Dict[str, Callable[[OpenAIImageProvider, str, Path], Any]] = {
    "generate_image": lambda provider, model, _: provider.generate_image("x", model=model),
    "stream_image": _stream("stream_image"),
    "edit_image": lambda provider, model, _: provider.edit_image("x", PNG4, model=model),
    "stream_edit": _stream("stream_edit"),
    "edit_image_from_refs": lambda provider, model, _: provider.edit_image_from_refs(
        "x", [{"image_url": "https://example.com/in.png"}], model=model
    ),
    "create_variation": lambda provider, model, _: provider.create_variation(PNG4, model=model),
    "batch api generation": _batch_item,
    "batch api edit": _batch_edit_item,
}


@pytest.mark.parametrize("when", ["on the date", "the day after"])
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("model", sorted(SHUT_DOWN))
def test_a_shut_down_model_is_refused_before_sending(
    mocked: Any, tmp_path: Path, model: str, method: str, when: str
) -> None:
    shutdown, _, replacements = SHUT_DOWN[model]
    today = day(shutdown) + (DAY if when == "the day after" else datetime.timedelta(0))
    with OpenAIImageProvider(api_key=API_KEY, clock=today) as provider:
        with pytest.raises(RequestValidationError) as caught:
            METHODS[method](provider, model, tmp_path)
    error = caught.value
    assert (error.param, error.path) == ("model", ("model",))
    assert f"Model {model!r} was shut down on {shutdown}" in str(error)
    for replacement in replacements:
        assert replacement in str(error)
    if not replacements:
        assert f"named no replacement; the library's default model is {DEFAULT_MODEL}" in str(error)
    assert "check_model_rules=False" in str(error)
    assert len(mocked.calls) == 0


def test_a_batch_api_run_records_a_shut_down_item_as_failed_and_uploads_nothing(mocked: Any, tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text(json.dumps({"id": "old", "prompt": "x", "model": "dall-e-3"}) + "\n", encoding="utf-8")
    with OpenAIImageProvider(api_key=API_KEY, clock=day(TABLE_CHECKED)) as provider:
        summary = run_batch_api(str(source), str(tmp_path / "out"), provider=provider)
    assert (summary.failed, summary.done, summary.batches) == (1, 0, [])
    assert summary.failures[0]["error_class"] == "RequestValidationError"
    assert "was shut down on 2026-05-12" in summary.failures[0]["message"]
    record = json.loads((tmp_path / "out" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (record["id"], record["state"], record["error_class"]) == ("old", "failed", "RequestValidationError")
    assert len(mocked.calls) == 0


def test_an_online_batch_records_a_shut_down_item_as_failed(mocked: Any, tmp_path: Path) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    items = [BatchItem("old", "x", {"model": "gpt-image-1"}, (), None, 1), BatchItem("new", "x", {}, (), None, 2)]
    with OpenAIImageProvider(api_key=API_KEY, clock=day(TABLE_CHECKED)) as provider:
        summary = run_batch(items, str(tmp_path / "out"), provider=provider, concurrency=1)
    assert (summary.done, summary.failed) == (1, 1)
    assert "'gpt-image-1' was shut down on 2026-10-23" in summary.failures[0]["message"]
    assert [sent_json(mocked, 0)["model"]] == ["gpt-image-2"]


@pytest.mark.parametrize("model", sorted(SHUT_DOWN))
def test_the_day_before_the_model_is_sent_with_one_warning(mocked: Any, fresh_warnings: None, model: str) -> None:
    shutdown, _, replacements = SHUT_DOWN[model]
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY, clock=day(shutdown) - DAY) as provider:
        with pytest.warns(ModelShutdownWarning) as record:
            provider.generate_image("x", model=model)
        with warnings.catch_warnings(record=True) as again:
            warnings.simplefilter("always")
            provider.generate_image("x", model=model)
    messages = shutdown_warnings(record)
    assert len(messages) == 1
    assert f"Model {model!r} shuts down on {shutdown}" in messages[0]
    for replacement in replacements:
        assert replacement in messages[0]
    warning = next(item for item in record if issubclass(item.category, ModelShutdownWarning))
    assert issubclass(warning.category, FutureWarning)
    assert warning.filename == __file__  # it names the caller's line, not the library's
    assert shutdown_warnings(again) == []
    assert [sent_json(mocked, index)["model"] for index in range(2)] == [model, model]


def test_the_warning_is_once_per_model_per_process(mocked: Any, fresh_warnings: None) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    clock = day("2026-11-30")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with OpenAIImageProvider(api_key=API_KEY, clock=clock) as first:
            first.generate_image("x", model="gpt-image-1.5")
            first.generate_image("x", model="gpt-image-1.5")
        with OpenAIImageProvider(api_key=API_KEY, clock=clock) as second:
            second.generate_image("x", model="gpt-image-1.5")
            second.generate_image("x", model="gpt-image-1-mini")
            second.edit_image("x", PNG4, model="gpt-image-1-mini")
    messages = shutdown_warnings(caught)
    assert len(messages) == 2
    assert "'gpt-image-1.5' shuts down on 2026-12-01" in messages[0]
    assert "'gpt-image-1-mini' shuts down on 2026-12-01" in messages[1]
    assert len(mocked.calls) == 5


def test_before_the_announcement_a_model_is_active_and_silent(mocked: Any, fresh_warnings: None) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY, clock=day("2026-06-01")) as provider:
        assert str(provider.models["gpt-image-1.5"].status(day("2026-06-01"))) == "active"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            provider.generate_image("x", model="gpt-image-1.5")
    assert shutdown_warnings(caught) == []
    with OpenAIImageProvider(api_key=API_KEY, clock=day("2026-06-02")) as provider:
        with pytest.warns(ModelShutdownWarning, match="announced 2026-06-02"):
            provider.generate_image("x", model="gpt-image-1.5")
    assert len(mocked.calls) == 2


def test_check_model_rules_false_turns_refusals_and_warnings_off(mocked: Any, fresh_warnings: None) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with OpenAIImageProvider(api_key=API_KEY, check_model_rules=False, clock=day("2026-12-01")) as provider:
            provider.generate_image("x", model="dall-e-2")
            provider.generate_image("x", model="gpt-image-1.5")
        with OpenAIImageProvider(api_key=API_KEY, check_model_rules=False, clock=day("2026-11-30")) as provider:
            provider.generate_image("x", model="gpt-image-1-mini")
    assert shutdown_warnings(caught) == []
    assert [sent_json(mocked, index)["model"] for index in range(3)] == [
        "dall-e-2",
        "gpt-image-1.5",
        "gpt-image-1-mini",
    ]


def test_the_clock_may_be_a_callable_read_at_each_call(mocked: Any, fresh_warnings: None) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    today = [day("2026-11-30")]
    with OpenAIImageProvider(api_key=API_KEY, clock=lambda: today[0]) as provider:
        with pytest.warns(ModelShutdownWarning):
            provider.generate_image("x", model="chatgpt-image-latest")
        today[0] = day("2026-12-01")
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image("x", model="chatgpt-image-latest")
    assert caught.value.param == "model"
    assert len(mocked.calls) == 1


def test_the_clock_may_be_a_date_or_a_datetime(mocked: Any) -> None:
    for clock in (day("2026-12-01"), datetime.datetime(2026, 12, 1, 0, 0, 1)):
        with OpenAIImageProvider(api_key=API_KEY, clock=clock) as provider:
            with pytest.raises(RequestValidationError):
                provider.generate_image("x", model="gpt-image-1.5")
    with pytest.raises(ConfigurationError, match="clock"):
        OpenAIImageProvider(api_key=API_KEY, clock="2026-12-01")  # type: ignore[arg-type]
    assert len(mocked.calls) == 0


def test_without_a_clock_today_in_utc_is_used(mocked: Any) -> None:
    """The real date is past every shutdown in the table (it was checked on 2026-12-03)."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(RequestValidationError, match="was shut down on 2026-05-12"):
            provider.generate_image("x", model="dall-e-3")
    assert len(mocked.calls) == 0


def test_azure_never_acts_on_shutdown_dates(mocked: Any, fresh_warnings: None, tmp_path: Path) -> None:
    endpoint = "https://my-resource.openai.azure.com"
    mocked.add(responses.POST, endpoint + "/openai/deployments/images/images/generations", json=images_body())
    overlay = write_json(tmp_path / "models.json", {"models": {"gpt-image-2": {"shutdown_date": "2099-01-01"}}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with AzureOpenAIImageProvider(
            api_key="azure-key", endpoint=endpoint, deployment="images", api_version="2025-04-01-preview"
        ) as azure:
            azure.generate_image("x", model="gpt-image-1")
            azure.generate_image("x", model="dall-e-3", quality="hd")
        with AzureOpenAIImageProvider(
            api_key="azure-key",
            endpoint=endpoint,
            deployment="images",
            api_version="2025-04-01-preview",
            models_file=overlay,
        ) as azure:
            assert azure.models["gpt-image-2"].shutdown_date == "2099-01-01"
            azure.generate_image("x", model="gpt-image-2")
    assert shutdown_warnings(caught) == []
    assert [sent_json(mocked, index)["model"] for index in range(3)] == ["gpt-image-1", "dall-e-3", "gpt-image-2"]


def test_a_model_named_only_in_extra_body_is_not_acted_on(mocked: Any, fresh_warnings: None) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with OpenAIImageProvider(api_key=API_KEY, clock=day("2026-12-01")) as provider:
            provider.generate_image("x", extra_body={"model": "dall-e-3"})
        with OpenAIImageProvider(api_key=API_KEY, clock=day("2026-11-30")) as provider:
            provider.generate_image("x", extra_body={"model": "gpt-image-1.5"})
    assert shutdown_warnings(caught) == []
    assert sent_json(mocked, 0) == {"prompt": "x", "model": "dall-e-3"}
    assert sent_json(mocked, 1) == {"prompt": "x", "model": "gpt-image-1.5"}


def child_env(tmp_path: Path) -> Dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "IMAGEPROVIDER_", "PYTHONWARNINGS"))
    }
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"), APPDATA=str(tmp_path / "appdata"))
    return env


@pytest.mark.slow
def test_the_warning_is_shown_by_default_in_a_plain_python_process(tmp_path: Path) -> None:
    script = (
        "import datetime\n"
        "from imageprovider import OpenAIImageProvider\n"
        "with OpenAIImageProvider(api_key='sk-child', base_url={url!r}, clock=datetime.date(2026, 11, 30)) as p:\n"
        "    p.generate_image('x', model='gpt-image-1.5')\n"
        "    p.generate_image('x', model='gpt-image-1.5')\n"
        "print('sent')\n"
    )
    with ScriptedServer([Reply(200, images_body())]) as server:
        child = subprocess.run(
            [sys.executable, "-c", script.format(url=server.base_url)],
            env=child_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert len(server.received) == 2
    assert child.returncode == 0, child.stderr
    assert child.stdout == "sent\n"
    assert child.stderr.count("ModelShutdownWarning") == 1
    assert child.stderr.startswith("<string>:4: ModelShutdownWarning: Model 'gpt-image-1.5' shuts down on 2026-12-01")
    assert "use gpt-image-2.6-sunburst or gpt-image-2.6-flare instead" in child.stderr


# -- overlays -------------------------------------------------------------------------------------


def test_an_overlay_changes_the_providers_table_not_model_specs(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "models.json",
        {"models": {"gpt-image-2": {"shutdown_date": "2026-06-01"}, "gpt-image-3": {"like": "gpt-image-2.6-flare"}}},
    )
    with OpenAIImageProvider(api_key=API_KEY, models_file=path) as provider:
        table = provider.models
        assert table.overlay_file == path
        assert table["gpt-image-2"].shutdown_date == "2026-06-01"
        assert (table["gpt-image-2"].origin, table["gpt-image-3"].origin) == (path, path)
        assert table["gpt-image-2.6-flare"].origin == BUILTIN
        assert table["gpt-image-2"].qualities == MODEL_SPECS["gpt-image-2"].qualities  # the rest is kept
    assert MODEL_SPECS["gpt-image-2"].shutdown_date is None
    assert MODEL_SPECS["gpt-image-2"].origin == BUILTIN
    assert "gpt-image-3" not in MODEL_SPECS
    with OpenAIImageProvider(api_key=API_KEY) as plain:
        assert plain.models is builtin_table()
        assert "gpt-image-3" not in plain.models


def test_a_past_shutdown_date_in_an_overlay_refuses_the_model(mocked: Any, tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "models.json",
        {"models": {"gpt-image-2": {"shutdown_date": "2026-12-02", "replacements": ["gpt-image-2.6-flare"]}}},
    )
    with OpenAIImageProvider(api_key=API_KEY, models_file=path, clock=day("2026-12-03")) as provider:
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image("x")
    assert caught.value.param == "model"
    assert "'gpt-image-2' was shut down on 2026-12-02; use gpt-image-2.6-flare instead" in str(caught.value)
    assert len(mocked.calls) == 0


def test_a_value_added_by_an_overlay_is_accepted(mocked: Any, tmp_path: Path) -> None:
    """``values`` merge key by key: quality gains "ultra", output_format keeps its own list."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    qualities = ["low", "medium", "high", "auto", "ultra"]
    path = write_json(tmp_path / "models.json", {"models": {"gpt-image-2": {"values": {"quality": qualities}}}})
    with OpenAIImageProvider(api_key=API_KEY) as plain:
        with pytest.raises(RequestValidationError):
            plain.generate_image("x", quality="ultra")
    with OpenAIImageProvider(api_key=API_KEY, models_file=path) as provider:
        provider.generate_image("x", quality="ultra")
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image("x", output_format="gif")
    assert caught.value.param == "output_format"
    assert len(mocked.calls) == 1
    assert sent_json(mocked)["quality"] == "ultra"


def test_a_new_model_like_a_known_one_inherits_its_rules(mocked: Any, tmp_path: Path) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    path = write_json(
        tmp_path / "models.json",
        {
            "models": {
                "gpt-image-3": {
                    "like": "gpt-image-2.6-flare",
                    "values": {"quality": ["low", "high", "ultra"]},
                    "source": "release notes",
                }
            }
        },
    )
    with OpenAIImageProvider(api_key=API_KEY, models_file=path) as provider:
        spec = provider.models["gpt-image-3"]
        assert spec.values["output_format"] == MODEL_SPECS["gpt-image-2.6-flare"].values["output_format"]
        assert (spec.source, spec.custom_size) == ("release notes", MODEL_SPECS["gpt-image-2.6-flare"].custom_size)
        provider.generate_image("x", model="gpt-image-3", quality="ultra", output_format="gif", size="512x512")
        for kwargs, param in (({"quality": "xhigh"}, "quality"), ({"complexity": "extreme"}, "complexity")):
            with pytest.raises(RequestValidationError) as caught:
                provider.generate_image("x", model="gpt-image-3", **kwargs)
            assert caught.value.param == param
    assert len(mocked.calls) == 1
    assert sent_json(mocked)["model"] == "gpt-image-3"


def test_a_new_model_without_like_gets_shape_checks_only(mocked: Any, tmp_path: Path) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    path = write_json(tmp_path / "models.json", {"models": {"house-model": {"source": "our gateway"}}})
    kwargs = {"model": "house-model", "n": 50, "quality": "ultra", "size": "7x7", "style": "cubist"}
    with OpenAIImageProvider(api_key=API_KEY, models_file=path) as provider:
        assert provider.models["house-model"].params is None
        provider.generate_image("p" * 40_000, **kwargs)
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image("x", model="house-model", n="2")  # type: ignore[arg-type]
    assert caught.value.param == "n"
    assert sent_json(mocked) == dict(kwargs, prompt="p" * 40_000)


@pytest.mark.parametrize(
    "document, fragments",
    [
        ({"models": {"gpt-image-3": {"like": "gpt-image-9"}}}, ["entry 'gpt-image-3'", "'like' 'gpt-image-9'"]),
        ({"models": {"a-model": {"like": "b-model"}, "b-model": {"like": "a-model"}}}, ["entry 'a-model'", "itself"]),
        ({"models": {"gpt-image-2": {"max_n": "ten"}}}, ["entry 'gpt-image-2'", "field 'max_n'"]),
        ({"models": {"gpt-image-2": {"shutdown_date": "1 June"}}}, ["entry 'gpt-image-2'", "field 'shutdown_date'"]),
        ({"models": {"gpt-image-2": {"colour": "red"}}}, ["entry 'gpt-image-2'", "colour"]),
        ({"entries": {}}, ["'models'"]),
    ],
)
def test_a_bad_overlay_is_a_configuration_error_naming_the_file_and_entry(
    mocked: Any, tmp_path: Path, document: Any, fragments: List[str]
) -> None:
    path = write_json(tmp_path / "bad-models.json", document)
    with pytest.raises(ConfigurationError) as caught:
        OpenAIImageProvider(api_key=API_KEY, models_file=path)
    assert f"Models file {path!r}" in str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("content, fragment", [("{not json", "is not valid JSON"), (None, "cannot be read")])
def test_an_unreadable_overlay_is_a_configuration_error_naming_the_file(
    tmp_path: Path, content: Optional[str], fragment: str
) -> None:
    path = tmp_path / "models.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        OpenAIImageProvider(api_key=API_KEY, models_file=str(path))
    assert f"Models file {str(path)!r} {fragment}" in str(caught.value)


def test_an_overlay_is_read_once_per_version_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    write_json(path, {"models": {"gpt-image-2": {"shutdown_date": "2027-01-01"}}})
    with OpenAIImageProvider(api_key=API_KEY, models_file=str(path)) as first:
        with OpenAIImageProvider(api_key=API_KEY, models_file=str(path)) as second:
            assert first.models is second.models
    write_json(path, {"models": {"gpt-image-2": {"shutdown_date": "2027-02-02", "notes": "moved"}}})
    info = os.stat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 2_000_000_000))
    with OpenAIImageProvider(api_key=API_KEY, models_file=str(path)) as third:
        assert third.models["gpt-image-2"].shutdown_date == "2027-02-02"
        assert third.models is not first.models
    assert first.models["gpt-image-2"].shutdown_date == "2027-01-01"


def _marker_overlays(tmp_path: Path) -> Dict[str, str]:
    """Three overlays, each adding a model named after where it is configured."""
    paths = {}
    for where, path in (
        ("argument", tmp_path / "arg" / "models.json"),
        ("environment", tmp_path / "env" / "models.json"),
        ("config-file", tmp_path / "conf" / "models.json"),
    ):
        paths[where] = write_json(path, {"models": {"from-" + where: {"like": "gpt-image-2"}}})
    config = tmp_path / "conf" / "config.ini"
    config.write_text("[imageprovider]\nmodels_file = models.json\n", encoding="utf-8")
    paths["config"] = str(config)
    return paths


def test_overlay_precedence_argument_then_environment_then_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _marker_overlays(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the config file's relative path is resolved against its own folder
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", paths["config"])
    monkeypatch.setenv("IMAGEPROVIDER_MODELS", paths["environment"])
    with OpenAIImageProvider(api_key=API_KEY, models_file=paths["argument"]) as provider:
        assert provider.models.overlay_file == paths["argument"]
        assert "from-argument" in provider.models and "from-environment" not in provider.models
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.models.overlay_file == paths["environment"]
        assert "from-environment" in provider.models and "from-config-file" not in provider.models
    monkeypatch.delenv("IMAGEPROVIDER_MODELS")
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert os.path.samefile(provider.models.overlay_file or "", paths["config-file"])
        assert "from-config-file" in provider.models
        assert provider.settings.sources["models_file"] == paths["config"]


def test_a_relative_models_file_in_a_config_file_is_relative_to_that_file(
    mocked: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = write_json(tmp_path / "conf" / "tables" / "models.json", {"models": {"gpt-image-2": {"max_n": 2}}})
    config = tmp_path / "conf" / "config.ini"
    config.write_text("[imageprovider]\nmodels_file = tables/models.json\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with OpenAIImageProvider(api_key=API_KEY, config_file=str(config)) as provider:
        assert os.path.samefile(provider.models.overlay_file or "", overlay)
        with pytest.raises(RequestValidationError, match="at most 2"):
            provider.generate_image("x", n=3)
    assert len(mocked.calls) == 0


def test_a_bad_models_file_named_by_the_config_file_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "config.ini"
    config.parent.mkdir()
    config.write_text("[imageprovider]\nmodels_file = missing.json\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="missing.json"):
        OpenAIImageProvider(api_key=API_KEY, config_file=str(config))


def test_load_overlay_reads_the_same_format_as_the_builtin_table(tmp_path: Path) -> None:
    """The built-in table itself is a valid overlay, and changes nothing."""
    path = str(tmp_path / "copy.json")
    Path(path).write_bytes((ROOT / "imageprovider" / "models.json").read_bytes())
    table = load_overlay(path)
    assert set(table) == set(MODEL_SPECS)
    for name, spec in MODEL_SPECS.items():
        assert table[name].as_entry() == spec.as_entry(), name


# -- shutdowns on the command line ------------------------------------------------------------------


@pytest.fixture
def cli_env(cli_env: Path) -> Path:
    """The shared ``cli_env``, with two input images in it."""
    tmp_path = cli_env
    (tmp_path / "in.png").write_bytes(PNG4)
    (tmp_path / "sketch.png").write_bytes(make_png(4, 4, 6))
    return tmp_path


@pytest.mark.parametrize(
    "argv, model",
    [
        (["generate", "x", "--model", "dall-e-3"], "dall-e-3"),
        (["generate", "x", "--model", "gpt-image-1.5", "--stream"], "gpt-image-1.5"),
        (["edit", "x", "in.png", "--model", "gpt-image-1"], "gpt-image-1"),
        (["edit", "x", "in.png", "--model", "chatgpt-image-latest", "--markup", "sketch.png"], "chatgpt-image-latest"),
        (["vary", "in.png"], "dall-e-2"),
    ],
)
def test_the_command_line_refuses_a_shut_down_model(
    mocked: Any, cli_env: Path, capsys: Any, argv: List[str], model: str
) -> None:
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.startswith(f"imageprovider: RequestValidationError: Model {model!r} was shut down on ")
    assert "--no-model-rules" in err
    assert len(mocked.calls) == 0
    assert sorted(path.name for path in cli_env.iterdir()) == ["in.png", "sketch.png"]


def test_vary_runs_with_no_model_rules(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, VARIATIONS_URL, json=images_body())
    status = cli.main(["vary", "in.png", "--no-model-rules", "-o", "out.png"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.split() == ["out.png"]
    assert text_parts(mocked.calls[0].request) == {"model": "dall-e-2"}


@pytest.mark.parametrize("via", ["online", "batch-api"])
def test_a_command_line_batch_records_a_shut_down_item_and_exits_3(
    mocked: Any, cli_env: Path, capsys: Any, via: str
) -> None:
    item = {"id": "old", "prompt": "x", "model": "gpt-image-1"}
    (cli_env / "items.jsonl").write_text(json.dumps(item) + "\n", encoding="utf-8")
    status = cli.main(["batch", "items.jsonl", "-o", "out", "--via", via, "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert status == 3, err
    summary = json.loads(out)
    assert (summary["failed"], summary["done"]) == (1, 0)
    assert "'gpt-image-1' was shut down on 2026-10-23" in summary["failures"][0]["message"]
    assert len(mocked.calls) == 0
