"""GIF and SVG results (gpt-image-2.6): recognised by their bytes, saved with ``.gif``/``.svg``.

Sniffing, names and MIME types; saving by ``image.save()``, ``save_to=``,
the command line and batches (online and the Batch API's result files);
``svg_usage`` as a typed :class:`~imageprovider.SvgUsage`, recorded in a
batch's manifest and counted in its token total. The tests marked "stand-in"
run against :class:`imageprovider.testing.FakeImagesServer`, which makes real
GIFs and SVGs.
"""

import base64
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import responses
from helpers import API_KEY, BASE_URL, GENERATIONS_URL, GIF, PNG, images_body, multipart_parts

from imageprovider import OpenAIImageProvider, ResponseValidationError, SvgUsage, cli
from imageprovider._imageinfo import EXTENSIONS, SNIFF_BYTES, sniff_mime_type
from imageprovider.batch import MANIFEST_NAME, run_batch, run_batch_api
from imageprovider.results import ImageResponse, total_tokens

FLARE = "gpt-image-2.6-flare"
GIF87 = (
    b"GIF87a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'
SVG_WITH_PROLOG = (
    b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- ' + b"a long comment " * 100 + b"-->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n' + SVG
)
EXTENSIONS_BY_SUFFIX = {suffix: mime_type for mime_type, suffix in EXTENSIONS.items()}
SVG_USAGE = {"input_tokens": 120, "output_tokens": 900, "reasoning_tokens": 640, "total_tokens": 1020, "model": "gpt-5"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def body_with(data: bytes, output_format: str, **fields: Any) -> Dict[str, Any]:
    return images_body(data=[{"b64_json": b64(data)}], output_format=output_format, **fields)


# -- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        pytest.param(GIF87, "image/gif", id="gif87a"),
        pytest.param(GIF, "image/gif", id="gif89a"),
        pytest.param(b"GIF89a", "image/gif", id="gif89a-signature-only"),
        pytest.param(b"GIF88a\x01\x00", None, id="gif88a"),
        pytest.param(SVG, "image/svg+xml", id="svg"),
        pytest.param(b"\xef\xbb\xbf" + SVG, "image/svg+xml", id="svg-after-bom"),
        pytest.param(b" \t\r\n  " + SVG, "image/svg+xml", id="svg-after-whitespace"),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + SVG,
            "image/svg+xml",
            id="svg-after-xml-declaration",
        ),
        pytest.param(b"<!-- drawn by hand -->\n<!-- twice -->" + SVG, "image/svg+xml", id="svg-after-comments"),
        pytest.param(
            b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">' + SVG, "image/svg+xml", id="svg-after-doctype"
        ),
        pytest.param(SVG_WITH_PROLOG, "image/svg+xml", id="svg-after-bom-prolog-long-comment-doctype"),
        pytest.param(b"<svg>", "image/svg+xml", id="bare-svg-tag"),
        pytest.param(b"<svg\n  width='1'/>", "image/svg+xml", id="svg-tag-newline"),
        pytest.param(b"<svg/>", "image/svg+xml", id="svg-self-closing"),
        pytest.param(b"<svgfoo/>", None, id="svgfoo"),
        pytest.param(b"<svg-like>", None, id="svg-like"),
        pytest.param(b"<SVG/>", None, id="uppercase-SVG"),
        pytest.param(b"<html><body>" + SVG + b"</body></html>", None, id="html-around-svg"),
        pytest.param(b"<!DOCTYPE html><html><svg/></html>", None, id="html-doctype"),
        pytest.param(b"<?xml version='1.0'?><feed/>", None, id="other-xml"),
        pytest.param(b"<!-- " + b"x" * SNIFF_BYTES + b" -->" + SVG, None, id="comment-longer-than-sniff-bytes"),
        pytest.param(b"<!-- never closed <svg>", None, id="unclosed-comment"),
        pytest.param(b"<?xml version='1.0' <svg>", None, id="unclosed-declaration"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"hello <svg>", None, id="text-before-svg"),
        pytest.param(PNG, "image/png", id="png"),
    ],
)
def test_sniffing(data: bytes, expected: Optional[str]) -> None:
    assert sniff_mime_type(data) == expected


def test_gif_and_svg_extensions() -> None:
    assert EXTENSIONS["image/gif"] == ".gif"
    assert EXTENSIONS["image/svg+xml"] == ".svg"


# -- results: save(), save_to= ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, output_format, mime_type, suffix",
    [(GIF, "gif", "image/gif", ".gif"), (SVG, "svg", "image/svg+xml", ".svg")],
    ids=["gif", "svg"],
)
def test_image_save_names_the_file_after_its_bytes(
    tmp_path: Path, data: bytes, output_format: str, mime_type: str, suffix: str
) -> None:
    response = ImageResponse.from_body(body_with(data, output_format), {})
    image = response.images[0]
    assert image.mime_type == mime_type
    assert image.data == data
    assert image.save(tmp_path / "plain") == tmp_path / ("plain" + suffix)
    assert image.save(tmp_path / "wrong.png") == tmp_path / ("wrong" + suffix)
    assert image.save(tmp_path / "dir") == tmp_path / ("dir" + suffix)
    assert (tmp_path / ("plain" + suffix)).read_bytes() == data
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        name + suffix for name in ("plain", "wrong", "dir")
    )


def test_a_format_the_library_does_not_save_is_still_refused(tmp_path: Path) -> None:
    response = ImageResponse.from_body(body_with(b"BM\x00\x00 a bitmap", "bmp"), {})
    with pytest.raises(ResponseValidationError, match="is not PNG, JPEG, WEBP, GIF or SVG"):
        response.images[0].save(tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "data, output_format, extra, suffix",
    [
        (GIF, "gif", {"size": "512x512", "frame_count": 4}, ".gif"),
        (SVG_WITH_PROLOG, "svg", {"svg": {"model": "gpt-5"}}, ".svg"),
    ],
    ids=["gif", "svg"],
)
def test_save_to_writes_gif_and_svg_as_they_arrive(
    mocked: Any, tmp_path: Path, data: bytes, output_format: str, extra: Dict[str, Any], suffix: str
) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=body_with(data, output_format))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        result = provider.generate_image(
            "A bouncing ball", model=FLARE, output_format=output_format, save_to=tmp_path / "out", **extra
        )
    image = result.images[0]
    assert image.path == tmp_path / "out" / ("a-bouncing-ball" + suffix)
    assert image.path.read_bytes() == data
    assert image.mime_type == EXTENSIONS_BY_SUFFIX[suffix]
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["a-bouncing-ball" + suffix]


# -- svg_usage --------------------------------------------------------------------------------------


def test_svg_usage_is_parsed_into_svg_usage(mocked: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=body_with(SVG, "svg", svg_usage=SVG_USAGE))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        result = provider.generate_image("A fox", model=FLARE, output_format="svg", svg={"model": "gpt-5"})
    assert result.svg_usage == SvgUsage(
        input_tokens=120, output_tokens=900, reasoning_tokens=640, total_tokens=1020, model="gpt-5"
    )
    assert result.usage is not None and result.usage.total_tokens == 100


@pytest.mark.parametrize("fields", [{}, {"svg_usage": None}])
def test_no_svg_usage_is_none(mocked: Any, fields: Dict[str, Any]) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=body_with(PNG, "png", **fields))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.generate_image("x").svg_usage is None


def test_partial_svg_usage_keeps_what_it_has() -> None:
    response = ImageResponse.from_body(body_with(SVG, "svg", svg_usage={"total_tokens": 7}), {})
    assert response.svg_usage == SvgUsage(total_tokens=7)


def test_an_off_schema_svg_usage_is_a_response_validation_error(mocked: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=body_with(SVG, "svg", svg_usage={"total_tokens": "many"}))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(ResponseValidationError):
            provider.generate_image("x", model=FLARE, output_format="svg", svg={"model": "gpt-5"})


def test_total_tokens_adds_svg_usage() -> None:
    assert total_tokens(body_with(SVG, "svg", svg_usage=SVG_USAGE)) == 100 + 1020
    assert total_tokens(body_with(PNG, "png")) == 100
    assert total_tokens({"usage": None, "svg_usage": {"total_tokens": 3}}) == 3
    assert total_tokens({}) == 0


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, flags, saved",
    [
        (GIF, ["--output-format", "gif", "--size", "512x512", "--frame-count", "4"], "x.gif"),
        (SVG_WITH_PROLOG, ["--output-format", "svg", "--svg-model", "gpt-5"], "x.svg"),
    ],
    ids=["gif", "svg"],
)
def test_cli_output_name_follows_the_bytes(
    mocked: Any, cli_env: Path, capsys: Any, data: bytes, flags: List[str], saved: str
) -> None:
    """``-o x.png`` becomes x.gif or x.svg."""
    mocked.add(responses.POST, GENERATIONS_URL, json=body_with(data, flags[1]))
    status = cli.main(["generate", "A ball", "--model", FLARE, *flags, "-o", "x.png", "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert json.loads(out)["files"] == [saved]
    assert (cli_env / saved).read_bytes() == data
    assert sorted(path.name for path in cli_env.iterdir()) == [saved]


def test_cli_several_svgs_go_into_a_folder(mocked: Any, cli_env: Path, capsys: Any) -> None:
    mocked.add(responses.POST, GENERATIONS_URL, json=body_with(SVG, "svg"))
    status = cli.main(["generate", "A fox", "--model", FLARE, "--output-format", "svg", "--svg-model", "m", "-o", "o/"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.split() == [str(Path("o") / "a-fox.svg")]
    assert (cli_env / "o" / "a-fox.svg").read_bytes() == SVG


# -- batches ----------------------------------------------------------------------------------------


ITEMS = [
    {"id": "anim", "prompt": "A ball", "model": FLARE, "output_format": "gif", "size": "512x512", "frame_count": 4},
    {
        "id": "logo",
        "prompt": "A fox",
        "model": FLARE,
        "output_format": "svg",
        "svg": {"model": "gpt-5", "reasoning": {"effort": "low"}},
        "complexity": "low",
        "extra_body": {"brand_new": 1},
    },
]


def write_items(tmp_path: Path, items: List[Dict[str, Any]] = ITEMS) -> str:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return str(path)


def answer_by_format(request: Any) -> Tuple[int, Dict[str, str], str]:
    sent = json.loads(request.body)
    if sent.get("output_format") == "svg":
        return 200, {}, json.dumps(body_with(SVG, "svg", svg_usage=SVG_USAGE))
    return 200, {}, json.dumps(body_with(GIF, "gif"))


def manifest_records(folder: Path) -> Dict[str, Dict[str, Any]]:
    lines = (folder / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    return {record["id"]: record for record in map(json.loads, lines)}


def expected_bodies() -> List[Dict[str, Any]]:
    anim = {key: value for key, value in ITEMS[0].items() if key != "id"}
    logo = {key: value for key, value in ITEMS[1].items() if key not in ("id", "extra_body")}
    return [anim, dict(logo, brand_new=1)]


def test_an_online_batch_saves_gifs_and_svgs_and_counts_svg_tokens(mocked: Any, tmp_path: Path) -> None:
    mocked.add_callback(responses.POST, GENERATIONS_URL, callback=answer_by_format, content_type="application/json")
    out = tmp_path / "out"
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        summary = run_batch(write_items(tmp_path), str(out), provider=provider, concurrency=1)
    assert (summary.done, summary.failed, summary.images) == (2, 0, 2), summary.failures
    assert summary.tokens == 100 + 100 + 1020
    assert (out / "anim.gif").read_bytes() == GIF
    assert (out / "logo.svg").read_bytes() == SVG
    records = manifest_records(out)
    assert records["anim"]["files"] == ["anim.gif"]
    assert records["logo"]["files"] == ["logo.svg"]
    assert records["logo"]["svg_usage"] == SVG_USAGE
    assert "svg_usage" not in records["anim"]
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["tokens"] == 1220
    sent = sorted((json.loads(call.request.body) for call in mocked.calls), key=lambda body: body["prompt"])
    assert sent == [dict(body, prompt=body["prompt"]) for body in expected_bodies()]


def test_a_csv_batch_item_carries_svg_and_extra_body_as_json_cells(mocked: Any, tmp_path: Path) -> None:
    mocked.add_callback(responses.POST, GENERATIONS_URL, callback=answer_by_format, content_type="application/json")
    source = tmp_path / "items.csv"
    source.write_text(
        "id,prompt,model,output_format,svg,complexity,extra_body\n"
        'logo,A fox,gpt-image-2.6-flare,svg,"{""model"": ""gpt-5""}",high,"{""brand_new"": [1]}"\n',
        encoding="utf-8",
    )
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        summary = run_batch(str(source), str(tmp_path / "out"), provider=provider, concurrency=1)
    assert summary.done == 1, summary.failures
    assert json.loads(mocked.calls[0].request.body) == {
        "prompt": "A fox",
        "model": FLARE,
        "output_format": "svg",
        "complexity": "high",
        "svg": {"model": "gpt-5"},
        "brand_new": [1],
    }


def result_line(custom_id: str, body: Dict[str, Any]) -> str:
    response = {"status_code": 200, "request_id": "req_" + custom_id, "body": body}
    return json.dumps({"id": "batch_req_" + custom_id, "custom_id": custom_id, "response": response, "error": None})


def test_the_batch_api_result_path_saves_gifs_and_svgs(mocked: Any, tmp_path: Path) -> None:
    results = "\n".join(
        [
            result_line("anim", body_with(GIF, "gif")),
            result_line("logo", body_with(SVG_WITH_PROLOG, "svg", svg_usage=SVG_USAGE)),
        ]
    )
    mocked.add(responses.POST, BASE_URL + "/files", json={"id": "file-in", "object": "file"})
    mocked.add(responses.POST, BASE_URL + "/batches", json={"id": "batch_1", "status": "validating"})
    mocked.add(
        responses.GET,
        BASE_URL + "/batches/batch_1",
        json={"id": "batch_1", "status": "completed", "output_file_id": "file-out"},
    )
    mocked.add(responses.GET, BASE_URL + "/files/file-out/content", body=results.encode("utf-8") + b"\n")
    out = tmp_path / "out"
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        summary = run_batch_api(write_items(tmp_path), str(out), provider=provider, wait=True, sleep=lambda _: None)
    assert (summary.done, summary.failed, summary.images) == (2, 0, 2), summary.failures
    assert summary.tokens == 100 + 100 + 1020
    assert (out / "anim.gif").read_bytes() == GIF
    assert (out / "logo.svg").read_bytes() == SVG_WITH_PROLOG
    records = manifest_records(out)
    assert records["logo"]["svg_usage"] == SVG_USAGE
    assert records["logo"]["request_id"] == "req_logo"
    # What was uploaded: one line per item, with the new parameters and extra_body's field.
    upload = next(call.request for call in mocked.calls if call.request.url == BASE_URL + "/files")
    (payload,) = [part[3] for part in multipart_parts(upload) if part[0] == "file"]
    lines = [json.loads(line) for line in payload.decode("utf-8").splitlines()]
    assert [(line["custom_id"], line["url"]) for line in lines] == [
        ("anim", "/v1/images/generations"),
        ("logo", "/v1/images/generations"),
    ]
    assert [line["body"] for line in lines] == expected_bodies()


# -- with the stand-in server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, saved, head",
    [
        (["--output-format", "gif", "--size", "512x512", "--frame-count", "4"], "ball.gif", "image/gif"),
        (["--output-format", "svg", "--svg-model", "gpt-5", "--svg-effort", "low"], "ball.svg", "image/svg+xml"),
    ],
)
def test_stand_in_cli_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, flags: List[str], saved: str, head: str
) -> None:
    """Stand-in: ``--fake`` answers with a real GIF or SVG, saved under the name its bytes call for."""
    monkeypatch.chdir(tmp_path)
    status = cli.main(["generate", "A ball", "--fake", "--model", FLARE, *flags, "-o", "ball.png"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.split() == [saved]
    assert sniff_mime_type((tmp_path / saved).read_bytes()) == head


def test_stand_in_batch_end_to_end(tmp_path: Path, capsys: Any) -> None:
    """Stand-in: a batch of a GIF and an SVG; the SVG's svg_usage counts in the summary."""
    out = tmp_path / "out"
    # The stand-in, like the API, refuses fields it does not know: extra_body sends a known one here.
    items = [ITEMS[0], dict(ITEMS[1], extra_body={"moderation": "low"})]
    status = cli.main(["batch", write_items(tmp_path, items), "-o", str(out), "--fake", "--json", "--quiet"])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    summary = json.loads(stdout)
    assert (summary["done"], summary["failed"], summary["images"]) == (2, 0, 2)
    assert sniff_mime_type((out / "anim.gif").read_bytes()) == "image/gif"
    assert sniff_mime_type((out / "logo.svg").read_bytes()) == "image/svg+xml"
    records = manifest_records(out)
    svg_usage = records["logo"]["svg_usage"]
    assert summary["tokens"] == (
        records["anim"]["usage"]["total_tokens"] + records["logo"]["usage"]["total_tokens"] + svg_usage["total_tokens"]
    )
