"""The options added with gpt-image-2.6 (api-facts §9.2), through the Python API and the command line.

``complexity``, ``frame_count``, ``frame_duration_ms``, ``svg``, ``markup``
and ``safety_identifier`` reach the wire exactly (JSON and multipart) on each
method that takes them; the GIF, SVG and markup rules refuse before anything
is sent. The command line maps each flag to its field, builds the ``svg``
object, sends ``edit --markup`` as a JSON edit with data URLs, and takes any
other field with ``--extra``/``--extra-json``.
"""

import base64
import inspect
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import responses
from helpers import (
    API_KEY,
    BASE_URL,
    BEFORE_SHUTDOWNS,
    GENERATIONS_URL,
    images_body,
    make_jpeg,
    make_png,
    multipart_parts,
)
from scripted_server import Reply, ScriptedServer

from imageprovider import MODEL_SPECS, ModelShutdownWarning, OpenAIImageProvider, RequestValidationError, _rules, cli
from imageprovider._inputs import image_data_url
from imageprovider._rules import check_params, sheet_size
from imageprovider.model_specs import builtin_table
from imageprovider.provider import EDIT_PARAMETERS, GENERATION_PARAMETERS, VARIATION_PARAMETERS

EDITS_URL = BASE_URL + "/images/edits"
VARIATIONS_URL = BASE_URL + "/images/variations"
FLARE = "gpt-image-2.6-flare"
SUNBURST = "gpt-image-2.6-sunburst"
PNG4 = make_png(4, 4)
RGBA4 = make_png(4, 4, 6)
RGBA8 = make_png(8, 8, 6)
NEW_KEYWORDS = {"complexity", "frame_count", "frame_duration_ms", "svg", "markup", "safety_identifier"}
#: Which of the new keywords each method takes.
TAKES = {
    "generate_image": {"complexity", "frame_count", "frame_duration_ms", "svg", "safety_identifier"},
    "stream_image": {"complexity", "safety_identifier"},
    "edit_image": {"complexity", "frame_count", "frame_duration_ms", "safety_identifier"},
    "stream_edit": {"complexity", "safety_identifier"},
    "edit_image_from_refs": {"complexity", "frame_count", "frame_duration_ms", "markup", "safety_identifier"},
    "create_variation": set(),
}


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def provider26() -> Any:
    with OpenAIImageProvider(api_key=API_KEY) as instance:
        yield instance


def parts_of(request: Any) -> List[Tuple[str, Any]]:
    """(name, text) for text parts and (name, (filename, type)) for files, in order."""
    return [
        (name, payload.decode("utf-8") if filename is None else (filename, content_type))
        for name, filename, content_type, payload in multipart_parts(request)
    ]


def sse_completed(kind: str = "image_generation") -> bytes:
    payload = {"type": kind + ".completed", "b64_json": base64.b64encode(PNG4).decode("ascii")}
    return (f"event: {kind}.completed\ndata: {json.dumps(payload)}\n\n").encode()


def refused(call: Any, param: str, fragment: str = "", path: Optional[Tuple[Any, ...]] = None) -> str:
    with pytest.raises(RequestValidationError) as caught:
        call()
    error = caught.value
    assert error.param == param, str(error)
    assert fragment in str(error)
    if path is not None:
        assert error.path == path
    return str(error)


def decode_data_url(url: str) -> Tuple[str, bytes]:
    header, _, payload = url.partition(",")
    assert header.endswith(";base64")
    return header[len("data:") : -len(";base64")], base64.b64decode(payload)


# -- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(TAKES))
def test_each_method_takes_the_new_keywords_that_apply_to_it(method: str) -> None:
    parameters = inspect.signature(getattr(OpenAIImageProvider, method)).parameters
    assert NEW_KEYWORDS & set(parameters) == TAKES[method]
    for name in TAKES[method]:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default is None


def test_the_command_line_and_batch_parameter_lists_carry_them() -> None:
    assert TAKES["generate_image"] <= set(GENERATION_PARAMETERS)
    assert TAKES["edit_image"] <= set(EDIT_PARAMETERS)
    assert not NEW_KEYWORDS & set(VARIATION_PARAMETERS)


# -- on the wire -------------------------------------------------------------------------------------


def test_generate_image_sends_the_gif_options_exactly(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    provider26.generate_image(
        "A bouncing ball",
        model=FLARE,
        size="512x512",
        output_format="gif",
        complexity="medium",
        frame_count=8,
        frame_duration_ms=120,
        safety_identifier="user-42",
    )
    assert mocked.calls[0].request.body == (
        b'{"prompt":"A bouncing ball","model":"gpt-image-2.6-flare","size":"512x512","output_format":"gif",'
        b'"complexity":"medium","frame_count":8,"frame_duration_ms":120,"safety_identifier":"user-42"}'
    )


def test_generate_image_sends_the_svg_object_exactly(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    provider26.generate_image(
        "A fox logo",
        model=SUNBURST,
        output_format="svg",
        complexity="low",
        svg={"model": "gpt-5", "reasoning": {"effort": "low"}},
        n=1,
    )
    assert mocked.calls[0].request.body == (
        b'{"prompt":"A fox logo","model":"gpt-image-2.6-sunburst","n":1,"output_format":"svg","complexity":"low",'
        b'"svg":{"model":"gpt-5","reasoning":{"effort":"low"}}}'
    )


def test_stream_image_sends_complexity_and_safety_identifier(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, body=sse_completed(), content_type="text/event-stream")
    with provider26.stream_image(
        "x", model=FLARE, complexity="high", safety_identifier="user-7", partial_images=1
    ) as stream:
        events = list(stream)
    assert len(events) == 1
    assert json.loads(mocked.calls[0].request.body) == {
        "prompt": "x",
        "model": FLARE,
        "complexity": "high",
        "safety_identifier": "user-7",
        "stream": True,
        "partial_images": 1,
    }


def test_edit_image_sends_the_new_options_as_multipart_fields(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    provider26.edit_image(
        "Make it bounce",
        PNG4,
        model=FLARE,
        size="512x512",
        output_format="gif",
        complexity="low",
        frame_count=3,
        frame_duration_ms=50,
        safety_identifier="user-9",
    )
    assert parts_of(mocked.calls[0].request) == [
        ("prompt", "Make it bounce"),
        ("model", FLARE),
        ("size", "512x512"),
        ("output_format", "gif"),
        ("complexity", "low"),
        ("frame_count", "3"),
        ("frame_duration_ms", "50"),
        ("safety_identifier", "user-9"),
        ("image", ("image-0.png", "image/png")),
    ]


def test_stream_edit_sends_complexity_and_safety_identifier(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, EDITS_URL, body=sse_completed("image_edit"), content_type="text/event-stream")
    with provider26.stream_edit("x", PNG4, model=SUNBURST, complexity="medium", safety_identifier="u") as stream:
        list(stream)
    assert parts_of(mocked.calls[0].request) == [
        ("prompt", "x"),
        ("model", SUNBURST),
        ("complexity", "medium"),
        ("safety_identifier", "u"),
        ("stream", "true"),
        ("image", ("image-0.png", "image/png")),
    ]


def test_edit_image_from_refs_sends_markup_and_the_new_options(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    image = image_data_url(PNG4)
    markup = image_data_url(RGBA4)
    provider26.edit_image_from_refs(
        "Follow the sketch",
        [{"image_url": image}, {"file_id": "file-2"}],
        model=FLARE,
        output_format="gif",
        complexity="high",
        frame_count=2,
        frame_duration_ms=20,
        markup={"image_url": markup},
        safety_identifier="user-3",
    )
    request = mocked.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "prompt": "Follow the sketch",
        "images": [{"image_url": image}, {"file_id": "file-2"}],
        "model": FLARE,
        "output_format": "gif",
        "complexity": "high",
        "frame_count": 2,
        "frame_duration_ms": 20,
        "markup": {"image_url": markup},
        "safety_identifier": "user-3",
    }


def test_a_variation_sends_safety_identifier_only_through_extra_body(mocked: Any) -> None:
    mocked.add(responses.POST, VARIATIONS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY, clock=BEFORE_SHUTDOWNS) as provider:
        provider.create_variation(PNG4, extra_body={"safety_identifier": "user-1"})
    assert ("safety_identifier", "user-1") in parts_of(mocked.calls[0].request)


@pytest.mark.parametrize("model", sorted(MODEL_SPECS))
def test_every_model_takes_safety_identifier(mocked: Any, model: str) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY, clock=BEFORE_SHUTDOWNS) as provider:
        provider.generate_image("x", model=model, safety_identifier="end-user-1")
        if "edits" in MODEL_SPECS[model].endpoints:
            provider.edit_image("x", make_png(4, 4), model=model, safety_identifier="end-user-1")
    assert json.loads(mocked.calls[0].request.body)["safety_identifier"] == "end-user-1"
    for call in list(mocked.calls)[1:]:
        assert ("safety_identifier", "end-user-1") in parts_of(call.request)


@pytest.mark.parametrize("value, param", [("", "safety_identifier"), (5, "safety_identifier")])
def test_safety_identifier_is_type_checked(
    mocked: Any, provider26: OpenAIImageProvider, value: Any, param: str
) -> None:
    refused(lambda: provider26.generate_image("x", safety_identifier=value), param)
    assert len(mocked.calls) == 0


# -- complexity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [FLARE, SUNBURST])
@pytest.mark.parametrize("value", ["low", "medium", "high"])
def test_complexity_values_are_sent(mocked: Any, provider26: OpenAIImageProvider, model: str, value: str) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    provider26.generate_image("x", model=model, complexity=value)
    assert json.loads(mocked.calls[0].request.body) == {"prompt": "x", "model": model, "complexity": value}


def test_an_unknown_complexity_is_refused(mocked: Any, provider26: OpenAIImageProvider) -> None:
    message = refused(lambda: provider26.generate_image("x", model=FLARE, complexity="extreme"), "complexity")
    assert "must be one of high, low, medium for gpt-image-2.6-flare, not 'extreme'" in message
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-2.5-flare", "gpt-image-2.5-sunburst-2026-09-08"])
def test_complexity_is_refused_before_2_6(mocked: Any, provider26: OpenAIImageProvider, model: str) -> None:
    message = refused(lambda: provider26.generate_image("x", model=model, complexity="low"), "complexity")
    assert "accepted by gpt-image-2.6-flare, gpt-image-2.6-sunburst" in message
    refused(lambda: provider26.edit_image("x", PNG4, model=model, complexity="low"), "complexity")
    assert len(mocked.calls) == 0


# -- GIF rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param, value", [("frame_count", 4), ("frame_duration_ms", 100)])
@pytest.mark.parametrize("output_format", [None, "png", "webp", "svg"])
def test_frame_options_apply_only_to_gif(
    mocked: Any, provider26: OpenAIImageProvider, param: str, value: int, output_format: Optional[str]
) -> None:
    kwargs: Dict[str, Any] = {param: value, "output_format": output_format}
    if output_format == "svg":
        kwargs["svg"] = {"model": "gpt-5"}
    message = refused(lambda: provider26.generate_image("x", model=FLARE, **kwargs), param)
    assert "applies only to output_format 'gif'" in message
    edit_kwargs = {param: value, "output_format": output_format if output_format != "svg" else "jpeg"}
    refused(lambda: provider26.edit_image("x", PNG4, model=FLARE, **edit_kwargs), param)
    refused(lambda: provider26.edit_image_from_refs("x", [{"file_id": "f"}], model=FLARE, **edit_kwargs), param)
    assert len(mocked.calls) == 0


def test_a_gif_is_not_streamed(mocked: Any, provider26: OpenAIImageProvider) -> None:
    refused(lambda: provider26.stream_image("x", model=FLARE, output_format="gif"), "stream", "cannot be streamed")
    refused(lambda: provider26.stream_image("x", model=FLARE, output_format="gif", partial_images=2), "stream")
    refused(lambda: provider26.stream_edit("x", PNG4, model=FLARE, output_format="gif"), "stream")
    assert len(mocked.calls) == 0


def test_a_gif_takes_no_partial_images() -> None:
    body = {"prompt": "x", "model": FLARE, "output_format": "gif", "partial_images": 1}
    table = builtin_table()
    refused(lambda: check_params(body, table[FLARE], "generations", table), "partial_images", "cannot be streamed")


def test_a_gif_edit_takes_no_mask(mocked: Any, provider26: OpenAIImageProvider) -> None:
    refused(lambda: provider26.edit_image("x", PNG4, mask=RGBA4, model=FLARE, output_format="gif"), "mask")
    refused(
        lambda: provider26.edit_image_from_refs(
            "x", [{"file_id": "f"}], mask={"file_id": "m"}, model=FLARE, output_format="gif"
        ),
        "mask",
    )
    assert len(mocked.calls) == 0


def test_a_gif_takes_no_output_compression(mocked: Any, provider26: OpenAIImageProvider) -> None:
    refused(
        lambda: provider26.generate_image("x", model=FLARE, output_format="gif", output_compression=80),
        "output_compression",
    )
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "size, frame_count", [("512x512", None), ("512x512", 16), ("1024x1024", 4), ("1024x1536", 2), ("auto", 16)]
)
def test_gif_frames_whose_sheet_fits_are_sent(
    mocked: Any, provider26: OpenAIImageProvider, size: str, frame_count: Optional[int]
) -> None:
    """512x512 is below the still-image minimum but a valid frame; the sheet of frames is what must fit."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    provider26.generate_image("x", model=FLARE, output_format="gif", size=size, frame_count=frame_count)
    sent = json.loads(mocked.calls[0].request.body)
    assert (sent["size"], sent.get("frame_count")) == (size, frame_count)


@pytest.mark.parametrize(
    "size, frame_count, sheet",
    [("1024x1024", 6, "3072x3072"), ("1024x1024", None, "3072x3072"), ("1024x1024", 16, "4096x4096")],
)
def test_gif_frames_whose_sheet_is_too_large_are_refused(
    mocked: Any, provider26: OpenAIImageProvider, size: str, frame_count: Optional[int], sheet: str
) -> None:
    """6 frames of 1024x1024 (and the default 9) tile 3 by 3 on a sheet over the pixel limit."""
    message = refused(
        lambda: provider26.generate_image("x", model=FLARE, output_format="gif", size=size, frame_count=frame_count),
        "size",
    )
    assert f"{sheet} sheet" in message
    assert f"one frame of {frame_count or 9}" in message
    assert len(mocked.calls) == 0


def test_the_sheet_a_gif_is_tiled_on() -> None:
    assert sheet_size(1024, 1024, 6, "square-grid") == (3072, 3072, "3 by 3")
    assert sheet_size(1024, 1024, 4, "square-grid") == (2048, 2048, "2 by 2")
    assert sheet_size(512, 256, 9, "square-grid") == (1536, 768, "3 by 3")
    assert sheet_size(512, 512, 10, "square-grid") == (2048, 2048, "4 by 4")
    assert sheet_size(512, 512, 1, "square-grid") == (512, 512, "1 by 1")
    assert sheet_size(256, 128, 5, "row") == (1280, 128, "in one row of 5")
    gif = builtin_table().formats["gif"]
    assert (gif.sheet, gif.default_frame_count) == ("square-grid", 9)


@pytest.mark.parametrize("frame_count, ok", [(1, False), (2, True), (9, True), (16, True), (17, False), (40, False)])
def test_frame_count_is_2_to_16(mocked: Any, provider26: OpenAIImageProvider, frame_count: int, ok: bool) -> None:
    """Out of range is reported as frame_count, even with a size the sheet rule would judge."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())

    def call() -> Any:
        return provider26.generate_image("x", model=FLARE, output_format="gif", size="512x512", frame_count=frame_count)

    if ok:
        call()
        assert json.loads(mocked.calls[0].request.body)["frame_count"] == frame_count
    else:
        refused(call, "frame_count", "with output_format 'gif'")
        assert len(mocked.calls) == 0


@pytest.mark.parametrize("duration, ok", [(19, False), (20, True), (200, True), (10_000, True)])
def test_frame_duration_ms_is_at_least_20(
    mocked: Any, provider26: OpenAIImageProvider, duration: int, ok: bool
) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())

    def call() -> Any:
        return provider26.generate_image("x", model=SUNBURST, output_format="gif", frame_duration_ms=duration)

    if ok:
        call()
        assert json.loads(mocked.calls[0].request.body)["frame_duration_ms"] == duration
    else:
        refused(call, "frame_duration_ms", "at least 20")
        assert len(mocked.calls) == 0


@pytest.mark.parametrize("output_format", ["gif", "svg"])
@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-2.5-flare"])
def test_gif_and_svg_need_gpt_image_2_6(
    mocked: Any, provider26: OpenAIImageProvider, model: str, output_format: str
) -> None:
    message = refused(lambda: provider26.generate_image("x", model=model, output_format=output_format), "output_format")
    assert f"'{output_format}' is accepted by gpt-image-2.6-flare, gpt-image-2.6-sunburst" in message
    assert len(mocked.calls) == 0


# -- SVG rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("svg", [None, {}, {"reasoning": {"effort": "low"}}, {"model": None}])
def test_an_svg_needs_svg_model(mocked: Any, provider26: OpenAIImageProvider, svg: Any) -> None:
    message = refused(
        lambda: provider26.generate_image("x", model=FLARE, output_format="svg", svg=svg), "svg", path=("svg", "model")
    )
    assert "'svg.model'" in message
    assert len(mocked.calls) == 0


def test_an_empty_svg_model_is_refused_by_the_schema(mocked: Any, provider26: OpenAIImageProvider) -> None:
    refused(
        lambda: provider26.generate_image("x", model=FLARE, output_format="svg", svg={"model": ""}),
        "svg",
        path=("svg", "model"),
    )
    assert len(mocked.calls) == 0


def test_an_svg_is_one_image(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    svg = {"model": "gpt-5"}
    refused(lambda: provider26.generate_image("x", model=FLARE, output_format="svg", svg=svg, n=2), "n", "at most 1")
    provider26.generate_image("x", model=FLARE, output_format="svg", svg=svg, n=1)
    assert len(mocked.calls) == 1


def test_an_svg_is_made_by_generations_only(mocked: Any, provider26: OpenAIImageProvider) -> None:
    fragment = "'svg' is made only by generations, not edits"
    refused(lambda: provider26.edit_image("x", PNG4, model=FLARE, output_format="svg"), "output_format", fragment)
    refused(
        lambda: provider26.edit_image_from_refs("x", [{"file_id": "f"}], model=FLARE, output_format="svg"),
        "output_format",
        fragment,
    )
    assert len(mocked.calls) == 0


def test_svg_applies_only_to_svg_output(mocked: Any, provider26: OpenAIImageProvider) -> None:
    message = refused(lambda: provider26.generate_image("x", model=FLARE, svg={"model": "gpt-5"}), "svg")
    assert "applies only to output_format 'svg'" in message
    assert len(mocked.calls) == 0


# -- markup -----------------------------------------------------------------------------------------------


def refs_edit(provider: OpenAIImageProvider, markup: Any, first: Optional[str] = None, **kwargs: Any) -> Any:
    images = [{"image_url": first or image_data_url(PNG4)}]
    return provider.edit_image_from_refs("x", images, model=kwargs.pop("model", FLARE), markup=markup, **kwargs)


@pytest.mark.parametrize(
    "markup, fragment",
    [
        (RGBA8, "is 8x8 but the first image is 4x4"),
        (PNG4, "must be a PNG with an alpha channel"),
        (make_jpeg(4, 4), "must be a PNG with an alpha channel"),
    ],
)
def test_a_markup_data_url_is_checked(
    mocked: Any, provider26: OpenAIImageProvider, markup: bytes, fragment: str
) -> None:
    refused(lambda: refs_edit(provider26, {"image_url": image_data_url(markup)}), "markup", fragment)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "url, path",
    [
        ("data:image/png;base64,***", ("markup", "image_url")),
        ("data:image/png," + "x", ("markup", "image_url")),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode("ascii"), ("markup", "image_url")),
    ],
)
def test_a_markup_data_url_that_is_not_an_image_is_refused(
    mocked: Any, provider26: OpenAIImageProvider, url: str, path: Tuple[Any, ...]
) -> None:
    refused(lambda: refs_edit(provider26, {"image_url": url}), "markup", path=path)
    assert len(mocked.calls) == 0


def test_a_markup_that_is_not_a_data_url_is_not_checked(mocked: Any, provider26: OpenAIImageProvider) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    refs_edit(provider26, {"image_url": "https://example.com/sketch.png"})
    refs_edit(provider26, {"file_id": "file-sketch"})
    # The first image is a URL: the markup's own format is checked, its size cannot be compared.
    refs_edit(provider26, {"image_url": image_data_url(RGBA8)}, first="https://example.com/in.png")
    refused(
        lambda: refs_edit(provider26, {"image_url": image_data_url(PNG4)}, first="https://example.com/in.png"), "markup"
    )
    sent = [json.loads(call.request.body)["markup"] for call in mocked.calls]
    assert sent == [
        {"image_url": "https://example.com/sketch.png"},
        {"file_id": "file-sketch"},
        {"image_url": image_data_url(RGBA8)},
    ]


def test_markup_is_a_gpt_image_2_6_edit_option(mocked: Any, provider26: OpenAIImageProvider) -> None:
    markup = {"image_url": image_data_url(RGBA4)}
    refused(lambda: refs_edit(provider26, markup, model="gpt-image-2"), "markup", "accepted by gpt-image-2.6-flare")
    assert len(mocked.calls) == 0


def test_markup_in_extra_body_or_without_model_rules_is_not_checked(mocked: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    bad = {"image_url": image_data_url(PNG4)}
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        provider.edit_image_from_refs("x", [{"image_url": image_data_url(PNG4)}], extra_body={"markup": bad})
    with OpenAIImageProvider(api_key=API_KEY, check_model_rules=False) as provider:
        refs_edit(provider, bad)
    assert [json.loads(call.request.body)["markup"] for call in mocked.calls] == [bad, bad]


# -- the command line ----------------------------------------------------------------------------------


def run_cli(capsys: Any, *argv: str) -> Tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def cli_refused(mocked: Any, capsys: Any, *argv: str) -> str:
    status, out, err = run_cli(capsys, *argv)
    assert status == cli.EXIT_USAGE, err
    assert out == ""
    assert len(mocked.calls) == 0
    return err


def test_cli_flags_map_to_the_new_fields(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    status, _, err = run_cli(
        capsys,
        "generate",
        "A ball",
        "--model",
        FLARE,
        "--output-format",
        "gif",
        "--size",
        "512x512",
        "--complexity",
        "low",
        "--frame-count",
        "4",
        "--frame-duration-ms",
        "120",
        "--safety-identifier",
        "user-42",
        "-o",
        "ball.png",
    )
    assert status == 0, err
    assert json.loads(mocked.calls[0].request.body) == {
        "prompt": "A ball",
        "model": FLARE,
        "size": "512x512",
        "output_format": "gif",
        "complexity": "low",
        "frame_count": 4,
        "frame_duration_ms": 120,
        "safety_identifier": "user-42",
    }


@pytest.mark.parametrize(
    "flags, svg",
    [
        (["--svg-model", "gpt-5", "--svg-effort", "low"], {"model": "gpt-5", "reasoning": {"effort": "low"}}),
        (["--svg-model", "gpt-5-mini"], {"model": "gpt-5-mini"}),
    ],
)
def test_cli_svg_flags_build_the_svg_object(
    mocked: Any, cli_env: Path, capsys: Any, flags: List[str], svg: Dict[str, Any]
) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    status, _, err = run_cli(capsys, "generate", "A fox", "--model", SUNBURST, "--output-format", "svg", *flags)
    assert status == 0, err
    assert json.loads(mocked.calls[0].request.body)["svg"] == svg


def test_cli_svg_effort_without_svg_model_is_refused(mocked: Any, cli_env: Path, capsys: Any) -> None:
    err = cli_refused(
        mocked, capsys, "generate", "A fox", "--model", SUNBURST, "--output-format", "svg", "--svg-effort", "low"
    )
    assert "RequestValidationError: Parameter 'svg.model' is required with output_format 'svg'" in err


def test_cli_edit_flags_map_to_multipart_fields(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    (cli_env / "in.png").write_bytes(PNG4)
    status, _, err = run_cli(
        capsys,
        "edit",
        "Bounce",
        "in.png",
        "--model",
        FLARE,
        "--output-format",
        "gif",
        "--size",
        "512x512",
        "--complexity",
        "high",
        "--frame-count",
        "2",
        "--frame-duration-ms",
        "40",
        "--safety-identifier",
        "u-1",
        "--extra",
        "moderation=low",
    )
    assert status == 0, err
    parts = dict(part for part in parts_of(mocked.calls[0].request) if isinstance(part[1], str))
    assert parts == {
        "prompt": "Bounce",
        "model": FLARE,
        "size": "512x512",
        "output_format": "gif",
        "complexity": "high",
        "frame_count": "2",
        "frame_duration_ms": "40",
        "safety_identifier": "u-1",
        "moderation": "low",
    }


def test_cli_edit_markup_sends_a_json_edit_with_data_urls(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    first, second = make_png(4, 4), make_jpeg(4, 4)
    (cli_env / "a.png").write_bytes(first)
    (cli_env / "b.jpg").write_bytes(second)
    (cli_env / "mask.png").write_bytes(RGBA4)
    (cli_env / "sketch.png").write_bytes(RGBA4)
    status, out, err = run_cli(
        capsys,
        "edit",
        "Follow the sketch",
        "a.png",
        "b.jpg",
        "--mask",
        "mask.png",
        "--markup",
        "sketch.png",
        "--model",
        FLARE,
        "--complexity",
        "low",
        "-o",
        "out.png",
    )
    assert status == 0, err
    assert out.strip() == "out.png"
    request = mocked.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert [decode_data_url(ref["image_url"]) for ref in body["images"]] == [
        ("image/png", first),
        ("image/jpeg", second),
    ]
    assert decode_data_url(body["mask"]["image_url"]) == ("image/png", RGBA4)
    assert decode_data_url(body["markup"]["image_url"]) == ("image/png", RGBA4)
    assert {key: body[key] for key in ("prompt", "model", "complexity")} == {
        "prompt": "Follow the sketch",
        "model": FLARE,
        "complexity": "low",
    }
    assert set(body) == {"prompt", "images", "mask", "markup", "model", "complexity"}


@pytest.mark.parametrize(
    "flags, param",
    [(["--stream"], "markup"), (["--response-format", "b64_json"], "response_format")],
)
def test_cli_edit_markup_refuses_what_a_json_edit_does_not_take(
    mocked: Any, cli_env: Path, capsys: Any, flags: List[str], param: str
) -> None:
    (cli_env / "a.png").write_bytes(PNG4)
    (cli_env / "sketch.png").write_bytes(RGBA4)
    err = cli_refused(mocked, capsys, "edit", "x", "a.png", "--markup", "sketch.png", "--model", FLARE, *flags)
    assert f"Parameter {param!r} cannot be used with" in err


def test_cli_edit_markup_of_the_wrong_size_is_refused(mocked: Any, cli_env: Path, capsys: Any) -> None:
    (cli_env / "a.png").write_bytes(PNG4)
    (cli_env / "sketch.png").write_bytes(RGBA8)
    err = cli_refused(mocked, capsys, "edit", "x", "a.png", "--markup", "sketch.png", "--model", FLARE)
    assert "Parameter 'markup'" in err and "is 8x8 but the first image is 4x4" in err


def test_cli_extra_values_are_json_when_they_parse_else_text(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body(2))
    status, _, err = run_cli(
        capsys,
        "generate",
        "x",
        "--extra",
        "n=2",
        "--extra",
        "quality=ultra",
        "--extra",
        'svg={"model": "x"}',
        "--extra",
        "flag=true",
        "--extra",
        "note=a=b",
        "--extra",
        "empty=",
        "--extra-json",
        '{"brand_new": {"depth": [1, 2]}, "ratio": 1.5}',
        "-o",
        "out/",
    )
    assert status == 0, err
    assert json.loads(mocked.calls[0].request.body) == {
        "prompt": "x",
        "model": "gpt-image-2",
        "n": 2,
        "quality": "ultra",
        "svg": {"model": "x"},
        "flag": True,
        "note": "a=b",
        "empty": "",
        "brand_new": {"depth": [1, 2]},
        "ratio": 1.5,
    }
    assert sorted(path.name for path in (cli_env / "out").iterdir()) == ["x-1.png", "x-2.png"]


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--extra", "n=2", "--extra", "n=3"], "--extra: 'n' is given more than once"),
        (["--extra-json", '{"n": 2}', "--extra", "n=3"], "--extra: 'n' is given more than once"),
        (["--extra", "quality"], "--extra takes KEY=VALUE, not 'quality'"),
        (["--extra", "=low"], "--extra takes KEY=VALUE, not '=low'"),
        (["--extra-json", "[1, 2]"], "--extra-json must be a JSON object"),
        (["--extra-json", '"text"'], "--extra-json must be a JSON object"),
        (["--extra-json", "{oops"], "--extra-json is not valid JSON"),
        (["--quality", "high", "--extra", "quality=low"], "Parameter 'quality' is given both"),
        (
            ["--safety-identifier", "a", "--extra-json", '{"safety_identifier": "b"}'],
            "'safety_identifier' is given both",
        ),
        (["--extra", "n=zero"], "Parameter 'n' must be of type integer"),
    ],
)
def test_cli_extra_mistakes_exit_2_naming_the_parameter(
    mocked: Any, cli_env: Path, capsys: Any, flags: List[str], fragment: str
) -> None:
    err = cli_refused(mocked, capsys, "generate", "x", *flags)
    assert err.startswith("imageprovider: RequestValidationError: ")
    assert fragment in err


@pytest.mark.parametrize(
    "command, flags, param",
    [
        ("generate", ["--style", "vivid"], "style"),
        ("generate", ["--frame-count", "3"], "frame_count"),
        ("generate", ["--frame-duration-ms", "30"], "frame_duration_ms"),
        ("generate", ["--svg-model", "gpt-5"], "svg"),
        ("generate", ["--response-format", "b64_json"], "response_format"),
        ("edit", ["--frame-count", "3"], "frame_count"),
        ("edit", ["--response-format", "url"], "response_format"),
    ],
)
def test_cli_stream_refuses_options_the_stream_does_not_take(
    mocked: Any, cli_env: Path, capsys: Any, command: str, flags: List[str], param: str
) -> None:
    (cli_env / "a.png").write_bytes(PNG4)
    inputs = ["a.png"] if command == "edit" else []
    err = cli_refused(mocked, capsys, command, "x", *inputs, "--stream", "--model", FLARE, *flags)
    assert f"Parameter {param!r} cannot be used with --stream" in err


def test_cli_no_model_rules_sends_what_the_table_would_refuse(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    argv = ["generate", "x", "--model", "dall-e-3", "--quality", "ultra", "--n", "3", "-o", "out/"]
    err = cli_refused(mocked, capsys, *argv)
    assert "was shut down on 2026-05-12" in err
    mocked.replace(responses.POST, GENERATIONS_URL, json=images_body(3))
    status, _, err = run_cli(capsys, *argv, "--no-model-rules")
    assert status == 0, err
    assert json.loads(mocked.calls[0].request.body) == {"prompt": "x", "model": "dall-e-3", "n": 3, "quality": "ultra"}


def test_cli_models_file_and_environment_overlay(
    mocked: Any, cli_env: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    overlay = cli_env / "models.json"
    qualities = ["low", "medium", "high", "auto", "ultra"]
    overlay.write_text(json.dumps({"models": {"gpt-image-2": {"values": {"quality": qualities}}}}), encoding="utf-8")
    argv = ["generate", "x", "--quality", "ultra", "-o", "one.png"]
    assert "must be one of auto, high, low, medium" in cli_refused(mocked, capsys, *argv)
    status, _, err = run_cli(capsys, *argv, "--models-file", str(overlay))
    assert status == 0, err
    monkeypatch.setenv("IMAGEPROVIDER_MODELS", str(overlay))
    status, _, err = run_cli(capsys, "generate", "x", "--quality", "ultra", "-o", "two.png")
    assert status == 0, err
    assert [json.loads(call.request.body)["quality"] for call in mocked.calls] == ["ultra", "ultra"]


def test_cli_bad_models_file_exits_2_naming_it(mocked: Any, cli_env: Path, capsys: Any) -> None:
    (cli_env / "models.json").write_text('{"models": {"gpt-image-3": {"like": "nope"}}}', encoding="utf-8")
    err = cli_refused(mocked, capsys, "generate", "x", "--models-file", "models.json")
    assert "ConfigurationError: Models file 'models.json': entry 'gpt-image-3' is 'like' 'nope'" in err


def test_cli_prints_the_shutdown_warning_as_its_own_line(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    overlay = cli_env / "models.json"
    entry = {"shutdown_date": "2099-01-01", "replacements": [SUNBURST]}
    overlay.write_text(json.dumps({"models": {"gpt-image-2": entry}}), encoding="utf-8")
    _rules.forget_shutdown_warnings()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", ModelShutdownWarning)
            status, out, err = run_cli(capsys, "generate", "x", "--models-file", str(overlay), "-o", "x.png")
    finally:
        _rules.forget_shutdown_warnings()
    assert status == 0, err
    assert out.strip() == "x.png"
    assert err.splitlines() == [
        "imageprovider: warning: Model 'gpt-image-2' shuts down on 2099-01-01; use gpt-image-2.6-sunburst instead. "
        "For a compatible server that still serves it, pass check_model_rules=False (--no-model-rules)."
    ]


@pytest.mark.slow
def test_cli_shutdown_warning_in_a_real_process(tmp_path: Path) -> None:
    """Python's default filters show it; the command prints it as one line of its own, once."""
    overlay = tmp_path / "models.json"
    overlay.write_text(json.dumps({"models": {"gpt-image-2.5-flare": {"shutdown_date": "2099-03-01"}}}), "utf-8")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "IMAGEPROVIDER_", "PYTHONWARNINGS"))
    }
    with ScriptedServer([Reply(200, images_body(2))]) as server:
        env.update(
            OPENAI_API_KEY="sk-child-process",
            OPENAI_BASE_URL=server.base_url,
            IMAGEPROVIDER_MODELS=str(overlay),
            HOME=str(tmp_path),
            XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        )
        child = subprocess.run(
            [sys.executable, "-m", "imageprovider", "generate", "x", "--model", "gpt-image-2.5-flare", "--n", "2"],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert len(server.received) == 1
    assert child.returncode == 0, child.stderr
    lines = child.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("imageprovider: warning: Model 'gpt-image-2.5-flare' shuts down on 2099-03-01;")
    assert sorted(child.stdout.split()) == ["x-1.png", "x-2.png"]
