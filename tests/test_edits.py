"""Image edits: multipart uploads (edit_image) and references in a JSON body (edit_image_from_refs).

Input images are read from a path, bytes, a binary file object or a
``(filename, bytes, mime_type)`` tuple, identified by their bytes, checked
against the model's limits before anything is sent, and uploaded as
multipart parts with a real image MIME type: ``image`` for one input,
repeated ``image[]`` for several, then ``mask``.
"""

import base64
import io
import json
import pathlib
import struct
import zlib
from typing import Any, List

import pytest
import responses
from helpers import API_KEY, BASE_URL, GIF, Part, images_body, make_jpeg, make_png, make_webp, multipart_parts

import imageprovider
from imageprovider import OpenAIImageProvider, RequestValidationError, ResponseValidationError, _inputs, _multipart

EDITS_URL = BASE_URL + "/images/edits"
MB = 1024 * 1024
PROMPT = "Add a red scarf"


# -- test images -------------------------------------------------------------------

PNG_2 = make_png(2, 2)
PNG_4 = make_png(4, 4)
PNG_WIDE = make_png(4, 2)
RGBA_2 = make_png(2, 2, 6)
RGBA_4 = make_png(4, 4, 6)
JPEG_3x2 = make_jpeg(3, 2)
WEBP_5x4 = make_webp(5, 4)


def padded_png(total: int, width: int = 8, height: int = 8) -> bytes:
    """A valid PNG header followed by zero padding up to ``total`` bytes."""
    head = make_png(width, height)
    assert len(head) < total
    return head + bytes(total - len(head))


# -- helpers -----------------------------------------------------------------------


def parts(call: Any) -> List[Part]:
    """The (name, filename, content type, payload) of each part of the call's multipart request."""
    return multipart_parts(call.request)


def text(name: str, value: str) -> Part:
    """A text part as parts() reports it (no Content-Type header, so text/plain)."""
    return (name, None, "text/plain", value.encode("utf-8"))


def edit(mocked: responses.RequestsMock, provider: OpenAIImageProvider, *args: Any, **kwargs: Any) -> Any:
    """Call edit_image against a 200 response; return the one request's call."""
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    result = provider.edit_image(*args, **kwargs)
    assert isinstance(result, imageprovider.ImageResponse)
    assert len(mocked.calls) == 1
    return mocked.calls[0]


def edit_rejected(
    mocked: responses.RequestsMock, provider: OpenAIImageProvider, *args: Any, **kwargs: Any
) -> RequestValidationError:
    """Call edit_image expecting a RequestValidationError; check nothing was sent."""
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    with pytest.raises(RequestValidationError) as caught:
        provider.edit_image(*args, **kwargs)
    assert len(mocked.calls) == 0
    return caught.value


def refs_call(mocked: responses.RequestsMock, provider: OpenAIImageProvider, *args: Any, **kwargs: Any) -> Any:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    provider.edit_image_from_refs(*args, **kwargs)
    assert len(mocked.calls) == 1
    return mocked.calls[0]


def refs_rejected(
    mocked: responses.RequestsMock, provider: OpenAIImageProvider, *args: Any, **kwargs: Any
) -> RequestValidationError:
    mocked.add(responses.POST, EDITS_URL, json=images_body())
    with pytest.raises(RequestValidationError) as caught:
        provider.edit_image_from_refs(*args, **kwargs)
    assert len(mocked.calls) == 0
    return caught.value


def write(folder: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- the test images themselves are what they claim -------------------------------


def test_test_images_are_read_as_intended() -> None:
    """Guard for the builders above: the library's header reader sees what the tests mean."""
    from imageprovider._imageinfo import read_image_info

    assert read_image_info(PNG_2) == ("image/png", 2, 2, False)
    assert read_image_info(RGBA_4) == ("image/png", 4, 4, True)
    assert read_image_info(JPEG_3x2) == ("image/jpeg", 3, 2, False)
    assert read_image_info(WEBP_5x4) == ("image/webp", 5, 4, False)
    assert read_image_info(GIF) is None
    assert zlib.decompress(PNG_2[41 : 41 + struct.unpack(">I", PNG_2[33:37])[0]]) == (b"\x00" + b"\x80\x40\x20" * 2) * 2


# -- multipart encoding: exact parts -------------------------------------------------


def test_one_image_by_path_is_the_scalar_image_field(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    """Prompt and model as text parts, then one file part named 'image' with the file's name."""
    path = write(tmp_path, "otter.png", PNG_2)
    call = edit(mocked, provider, PROMPT, str(path))
    assert call.request.url == EDITS_URL
    assert parts(call) == [
        text("prompt", PROMPT),
        text("model", "gpt-image-2"),
        ("image", "otter.png", "image/png", PNG_2),
    ]


def test_one_image_in_a_list_is_still_the_scalar_image_field(
    mocked: Any, provider: Any, tmp_path: pathlib.Path
) -> None:
    """A bare 'image' is what the API wants for a single upload; 'image[]' only for several."""
    path = write(tmp_path, "otter.png", PNG_2)
    names = [part[0] for part in parts(edit(mocked, provider, PROMPT, [path]))]
    assert names == ["prompt", "model", "image"]


def test_several_images_are_repeated_image_array_parts_in_order(
    mocked: Any, provider: Any, tmp_path: pathlib.Path
) -> None:
    """Every input kind at once: str path, pathlib.Path, bytes, a file object, a tuple."""
    first = write(tmp_path, "first.png", PNG_2)
    second = write(tmp_path, "second.jpg", JPEG_3x2)
    stream = io.BytesIO(PNG_4)
    with open(write(tmp_path, "named.webp", WEBP_5x4), "rb") as named:
        call = edit(
            mocked, provider, PROMPT, [str(first), second, RGBA_2, stream, ("given.png", PNG_WIDE, "image/png"), named]
        )
        assert named.closed is False
    assert stream.closed is False
    assert parts(call) == [
        text("prompt", PROMPT),
        text("model", "gpt-image-2"),
        ("image[]", "first.png", "image/png", PNG_2),
        ("image[]", "second.jpg", "image/jpeg", JPEG_3x2),
        ("image[]", "image-2.png", "image/png", RGBA_2),
        ("image[]", "image-3.png", "image/png", PNG_4),
        ("image[]", "given.png", "image/png", PNG_WIDE),
        ("image[]", "named.webp", "image/webp", WEBP_5x4),
    ]


def test_a_tuple_of_inputs_is_several_images(mocked: Any, provider: Any) -> None:
    """A plain tuple (not a file tuple) counts as several inputs, like a list."""
    call = edit(mocked, provider, PROMPT, (PNG_2, JPEG_3x2))
    assert [(name, mime) for name, _, mime, _ in parts(call)[2:]] == [
        ("image[]", "image/png"),
        ("image[]", "image/jpeg"),
    ]


def test_all_text_fields_in_signature_order_then_images_then_mask(
    mocked: Any, provider: Any, tmp_path: pathlib.Path
) -> None:
    """Keyword order at the call site does not matter; numbers are written in decimal."""
    image = write(tmp_path, "photo.png", PNG_4)
    mask = write(tmp_path, "mask.png", RGBA_4)
    call = edit(
        mocked,
        provider,
        PROMPT,
        [image, ("second.png", PNG_2, "image/png")],
        mask=mask,
        user="user-7",
        input_fidelity="high",
        output_compression=80,
        output_format="webp",
        background="opaque",
        quality="high",
        size="1536x1024",
        n=2,
        model="gpt-image-1",
    )
    assert parts(call) == [
        text("prompt", PROMPT),
        text("model", "gpt-image-1"),
        text("n", "2"),
        text("size", "1536x1024"),
        text("quality", "high"),
        text("background", "opaque"),
        text("output_format", "webp"),
        text("output_compression", "80"),
        text("input_fidelity", "high"),
        text("user", "user-7"),
        ("image[]", "photo.png", "image/png", PNG_4),
        ("image[]", "second.png", "image/png", PNG_2),
        ("mask", "mask.png", "image/png", RGBA_4),
    ]


def test_dall_e_2_edit_sends_response_format_and_mask(mocked: Any, provider: Any) -> None:
    """One square PNG and a matching RGBA mask are what dall-e-2 takes."""
    call = edit(
        mocked,
        provider,
        PROMPT,
        ("sq.png", PNG_4, "image/png"),
        mask=("m.png", RGBA_4, "image/png"),
        model="dall-e-2",
        size="256x256",
        response_format="url",
    )
    assert parts(call) == [
        text("prompt", PROMPT),
        text("model", "dall-e-2"),
        text("size", "256x256"),
        text("response_format", "url"),
        ("image", "sq.png", "image/png", PNG_4),
        ("mask", "m.png", "image/png", RGBA_4),
    ]


def test_parameters_passed_as_none_are_not_sent(mocked: Any, provider: Any) -> None:
    call = edit(
        mocked,
        provider,
        PROMPT,
        PNG_2,
        mask=None,
        model=None,
        n=None,
        size=None,
        quality=None,
        background=None,
        output_format=None,
        output_compression=None,
        input_fidelity=None,
        response_format=None,
        user=None,
        extra_body=None,
        timeout=None,
    )
    assert [part[0] for part in parts(call)] == ["prompt", "model", "image"]


def test_request_headers(mocked: Any, provider: Any) -> None:
    """Bearer key, multipart content type with a boundary, and a body that really is bytes."""
    call = edit(mocked, provider, PROMPT, PNG_2)
    headers = call.request.headers
    assert headers["Authorization"] == "Bearer " + API_KEY
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    boundary = headers["Content-Type"].split("boundary=", 1)[1]
    assert call.request.body.startswith(b"--" + boundary.encode("ascii") + b"\r\n")
    assert int(headers["Content-Length"]) == len(call.request.body)


@pytest.mark.parametrize(
    "name, data, mime",
    [
        ("photo.jpg", PNG_2, "image/png"),
        ("photo.png", JPEG_3x2, "image/jpeg"),
        ("photo", WEBP_5x4, "image/webp"),
        ("photo.bin", PNG_2, "image/png"),
    ],
    ids=["png-named-jpg", "jpeg-named-png", "webp-no-extension", "png-named-bin"],
)
def test_mime_type_is_sniffed_from_bytes_not_the_name(
    mocked: Any, provider: Any, tmp_path: pathlib.Path, name: str, data: bytes, mime: str
) -> None:
    """Never application/octet-stream: the API refuses that with a 400."""
    call = edit(mocked, provider, PROMPT, write(tmp_path, name, data))
    assert parts(call)[-1] == ("image", name, mime, data)


@pytest.mark.parametrize(
    "data, filename, mime",
    [
        (PNG_2, "image-0.png", "image/png"),
        (JPEG_3x2, "image-0.jpg", "image/jpeg"),
        (WEBP_5x4, "image-0.webp", "image/webp"),
    ],
    ids=["png", "jpeg", "webp"],
)
def test_bytes_input_gets_a_filename_with_the_sniffed_extension(
    mocked: Any, provider: Any, data: bytes, filename: str, mime: str
) -> None:
    call = edit(mocked, provider, PROMPT, data)
    assert parts(call)[-1] == ("image", filename, mime, data)


@pytest.mark.parametrize("value", [bytearray(PNG_2), memoryview(PNG_2)], ids=["bytearray", "memoryview"])
def test_bytes_like_inputs_are_accepted(mocked: Any, provider: Any, value: Any) -> None:
    assert parts(edit(mocked, provider, PROMPT, value))[-1][2:] == ("image/png", PNG_2)


def test_tuple_declared_jpg_alias_is_accepted(mocked: Any, provider: Any) -> None:
    """'image/jpg' is a common spelling of image/jpeg; the sent type is the canonical one."""
    call = edit(mocked, provider, PROMPT, ("a.jpg", JPEG_3x2, "image/jpg"))
    assert parts(call)[-1] == ("image", "a.jpg", "image/jpeg", JPEG_3x2)


def test_mask_part_uses_sniffed_type_and_comes_last(mocked: Any, provider: Any) -> None:
    call = edit(mocked, provider, PROMPT, [PNG_2, PNG_4], mask=io.BytesIO(RGBA_2))
    found = parts(call)
    assert [part[0] for part in found] == ["prompt", "model", "image[]", "image[]", "mask"]
    assert found[-1][2:] == ("image/png", RGBA_2)
    assert found[-1][1]  # some filename, so the server treats it as a file


def test_booleans_are_sent_as_true_false(mocked: Any, provider: Any) -> None:
    """stream=False through extra_body is not a streaming request; it goes out as the text 'false'."""
    call = edit(mocked, provider, PROMPT, PNG_2, extra_body={"stream": False})
    assert parts(call)[:3] == [text("prompt", PROMPT), text("model", "gpt-image-2"), text("stream", "false")]


def test_text_value_encodes_booleans_and_numbers() -> None:
    assert _multipart.text_value(True) == "true"
    assert _multipart.text_value(False) == "false"
    assert _multipart.text_value(3) == "3"
    assert _multipart.text_value("x") == "x"


def test_stream_true_is_refused_by_edit_image(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, extra_body={"stream": True})
    assert error.param == "stream"


def test_unknown_extra_body_fields_are_sent_after_the_parameters(mocked: Any, provider: Any) -> None:
    call = edit(mocked, provider, PROMPT, PNG_2, size="1024x1024", extra_body={"vendor_flag": True})
    assert [part[0] for part in parts(call)] == ["prompt", "model", "size", "vendor_flag", "image"]
    assert parts(call)[3] == text("vendor_flag", "true")


# -- files: who opens and closes them ------------------------------------------------


def test_files_given_by_path_are_closed(
    mocked: Any, provider: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: List[Any] = []
    real_open = open

    def tracking_open(*args: Any, **kwargs: Any) -> Any:
        handle = real_open(*args, **kwargs)
        opened.append(handle)
        return handle

    monkeypatch.setattr(_inputs, "open", tracking_open, raising=False)
    edit(
        mocked,
        provider,
        PROMPT,
        [write(tmp_path, "a.png", PNG_2), str(write(tmp_path, "b.png", PNG_4))],
        mask=write(tmp_path, "m.png", RGBA_2),
    )
    assert len(opened) == 3
    assert all(handle.closed for handle in opened)


def test_caller_file_objects_are_left_open(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    with open(write(tmp_path, "a.png", PNG_2), "rb") as image, open(write(tmp_path, "m.png", RGBA_2), "rb") as mask:
        call = edit(mocked, provider, PROMPT, image, mask=mask)
        assert image.closed is False
        assert mask.closed is False
    assert parts(call)[-2:] == [("image", "a.png", "image/png", PNG_2), ("mask", "m.png", "image/png", RGBA_2)]


def test_caller_file_object_is_left_open_when_rejected(mocked: Any, provider: Any) -> None:
    stream = io.BytesIO(GIF)
    edit_rejected(mocked, provider, PROMPT, stream)
    assert stream.closed is False


# -- inputs checked before sending -----------------------------------------------------


def test_gif_named_png_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2, write(tmp_path, "x.png", GIF)])
    assert error.param == "images"
    assert error.path == ("images", 1)
    assert "x.png" in error.message


@pytest.mark.parametrize(
    "data", [GIF, b"", b"not an image at all", b"\x89PNG\r\n"], ids=["gif", "empty", "text", "truncated-signature"]
)
def test_bytes_that_are_not_png_jpeg_or_webp_are_rejected(mocked: Any, provider: Any, data: bytes) -> None:
    error = edit_rejected(mocked, provider, PROMPT, data)
    assert (error.param, error.path) == ("images", ("images", 0))


def test_image_over_50_mb_is_rejected_for_gpt_image_models(mocked: Any, provider: Any) -> None:
    big = padded_png(50 * MB + 1)
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2, big])
    assert (error.param, error.path) == ("images", ("images", 1))


def test_image_file_over_50_mb_is_rejected_by_path(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "huge.png", padded_png(50 * MB + 1))
    error = edit_rejected(mocked, provider, PROMPT, path, model="gpt-image-1.5")
    assert (error.param, error.path) == ("images", ("images", 0))
    assert "huge.png" in error.message


def test_image_file_object_over_50_mb_is_rejected(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, io.BytesIO(padded_png(50 * MB + 1)))
    assert (error.param, error.path) == ("images", ("images", 0))


def test_dall_e_2_size_limit_is_4_mb(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, padded_png(4 * MB + 1), model="dall-e-2")
    assert (error.param, error.path) == ("images", ("images", 0))
    call = edit(mocked, provider, PROMPT, padded_png(4 * MB), model="dall-e-2")
    assert parts(call)[-1][0] == "image"


@pytest.mark.parametrize(
    "images",
    [JPEG_3x2, make_jpeg(4, 4), WEBP_5x4, PNG_WIDE, [PNG_4, PNG_4]],
    ids=["jpeg", "square-jpeg", "webp", "non-square-png", "two-images"],
)
def test_dall_e_2_needs_one_square_png(mocked: Any, provider: Any, images: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, images, model="dall-e-2")
    assert error.param == "images"


def test_mask_must_have_an_alpha_channel(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, mask=PNG_2)
    assert (error.param, error.path) == ("mask", ("mask",))


@pytest.mark.parametrize("mask", [make_webp(2, 2, alpha=True), make_jpeg(2, 2)], ids=["webp-alpha", "jpeg"])
def test_mask_must_be_a_png(mocked: Any, provider: Any, mask: bytes) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, mask=mask)
    assert (error.param, error.path) == ("mask", ("mask",))


def test_mask_that_is_not_an_image_is_rejected(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, mask=GIF)
    assert (error.param, error.path) == ("mask", ("mask",))


def test_mask_must_match_the_first_images_size(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, mask=RGBA_4)
    assert (error.param, error.path) == ("mask", ("mask",))
    assert "4x4" in error.message and "2x2" in error.message


def test_mask_is_compared_with_the_first_image_only(mocked: Any, provider: Any) -> None:
    edit(mocked, provider, PROMPT, [PNG_4, PNG_2], mask=RGBA_4)
    mocked.reset()
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2, PNG_4], mask=RGBA_4)
    assert error.param == "mask"


def test_mask_over_4_mb_is_rejected(mocked: Any, provider: Any) -> None:
    head = make_png(8, 8, 6)
    error = edit_rejected(mocked, provider, PROMPT, make_png(8, 8), mask=head + bytes(4 * MB + 1 - len(head)))
    assert error.param == "mask"


def test_more_than_16_images_are_rejected(mocked: Any, provider: Any) -> None:
    edit(mocked, provider, PROMPT, [PNG_2] * 16)
    mocked.reset()
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2] * 17)
    assert error.param == "images"


def test_more_than_16_images_are_rejected_even_for_unknown_models(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2] * 17, model="my-compatible-model")
    assert error.param == "images"


@pytest.mark.parametrize("images", [[], ()], ids=["empty-list", "empty-tuple"])
def test_zero_images_are_rejected(mocked: Any, provider: Any, images: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, images)
    assert error.param == "images"


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-1.5"])
def test_input_fidelity_accepted_by_gpt_image_1_and_1_5(mocked: Any, provider: Any, model: str) -> None:
    call = edit(mocked, provider, PROMPT, PNG_2, model=model, input_fidelity="low")
    assert text("input_fidelity", "low") in parts(call)


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1-mini"])
def test_input_fidelity_rejected_by_other_models(mocked: Any, provider: Any, model: str) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, model=model, input_fidelity="high")
    assert error.param == "input_fidelity"


def test_input_fidelity_with_the_default_model_is_rejected(mocked: Any, provider: Any) -> None:
    """The default model is gpt-image-2, which refuses input_fidelity."""
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, input_fidelity="low")
    assert error.param == "input_fidelity"


def test_dall_e_3_has_no_edits(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, model="dall-e-3")
    assert error.param == "model"


def test_response_format_rejected_for_gpt_image_models(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, response_format="b64_json")
    assert error.param == "response_format"


def test_text_mode_file_object_is_rejected(mocked: Any, provider: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, io.StringIO("not bytes"))
    assert (error.param, error.path) == ("images", ("images", 0))
    assert "'rb'" in error.message


def test_real_file_opened_in_text_mode_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    """open(path) without 'b': reading PNG bytes as UTF-8 text fails; that must still be a RequestValidationError."""
    path = write(tmp_path, "photo.png", PNG_2)
    with open(path, encoding="utf-8") as handle:
        error = edit_rejected(mocked, provider, PROMPT, [PNG_2, handle])
        assert handle.closed is False
    assert (error.param, error.path) == ("images", ("images", 1))


def test_mask_opened_in_text_mode_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, mask=io.StringIO("mask"))
    assert (error.param, error.path) == ("mask", ("mask",))


@pytest.mark.parametrize(
    "value",
    [
        ("a.png", PNG_2, "image/jpeg"),
        ("a.jpg", JPEG_3x2, "image/png"),
        ("a.webp", PNG_2, "image/webp"),
        ("a.png", PNG_2, "application/octet-stream"),
    ],
    ids=["png-declared-jpeg", "jpeg-declared-png", "png-declared-webp", "octet-stream"],
)
def test_tuple_whose_declared_type_disagrees_with_the_bytes_is_rejected(mocked: Any, provider: Any, value: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2, value])
    assert (error.param, error.path) == ("images", ("images", 1))


@pytest.mark.parametrize(
    "value",
    [("a.png", PNG_2), ("a.png", "text", "image/png"), (1, PNG_2, "image/png")],
    ids=["two-items", "str-data", "int-name"],
)
def test_malformed_tuples_are_rejected(mocked: Any, provider: Any, value: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, [value])
    assert error.param == "images"


@pytest.mark.parametrize("value", [None, 42, 1.5, {"image": PNG_2}], ids=["none", "int", "float", "dict"])
def test_unsupported_input_types_are_rejected(mocked: Any, provider: Any, value: Any) -> None:
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2, value])
    assert (error.param, error.path) == ("images", ("images", 1))


def test_nonexistent_path_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    error = edit_rejected(mocked, provider, PROMPT, [PNG_2, tmp_path / "missing.png"])
    assert (error.param, error.path) == ("images", ("images", 1))


def test_nonexistent_path_is_rejected_for_unknown_models(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    """Without a size limit the file is opened straight away; the error is the same."""
    error = edit_rejected(mocked, provider, PROMPT, str(tmp_path / "missing.png"), model="my-compatible-model")
    assert (error.param, error.path) == ("images", ("images", 0))


def test_directory_path_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    error = edit_rejected(mocked, provider, PROMPT, tmp_path)
    assert error.param == "images"


def test_nonexistent_mask_path_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    error = edit_rejected(mocked, provider, PROMPT, PNG_2, mask=str(tmp_path / "nope.png"))
    assert (error.param, error.path) == ("mask", ("mask",))


def test_extra_body_may_send_moderation_in_a_multipart_edit(mocked: Any, provider: Any) -> None:
    """moderation exists only in the JSON edit body, but extra_body sends any field as given."""
    call = edit(mocked, provider, PROMPT, PNG_2, extra_body={"moderation": "low"})
    assert text("moderation", "low") in parts(call)


def test_edit_image_has_no_moderation_keyword(provider: Any) -> None:
    with pytest.raises(TypeError):
        provider.edit_image(PROMPT, PNG_2, moderation="low")


def test_rules_are_skipped_when_turned_off_but_inputs_still_sniffed(mocked: Any) -> None:
    """check_model_rules=False: input_fidelity goes to gpt-image-2; a GIF is still refused."""
    with OpenAIImageProvider(api_key=API_KEY, check_model_rules=False) as relaxed:
        call = edit(mocked, relaxed, PROMPT, PNG_2, input_fidelity="high")
        assert text("input_fidelity", "high") in parts(call)
        mocked.reset()
        error = edit_rejected(mocked, relaxed, PROMPT, GIF)
    assert error.param == "images"


# -- the response ---------------------------------------------------------------------


def test_edit_response_is_parsed(mocked: Any, provider: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, json=images_body(2))
    result = provider.edit_image(PROMPT, PNG_2, n=2)
    assert len(result.images) == 2
    assert result.images[0].data == base64.b64decode(images_body()["data"][0]["b64_json"])


@pytest.mark.parametrize(
    "body",
    [{"created": 1, "data": []}, {"data": [{"b64_json": "AAAA"}]}, {"created": 1, "data": [{"b64_json": 5}]}],
    ids=["empty-data", "no-created", "b64-not-string"],
)
def test_edit_response_violating_the_schema_raises(mocked: Any, provider: Any, body: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, json=body)
    with pytest.raises(ResponseValidationError) as caught:
        provider.edit_image(PROMPT, PNG_2)
    assert caught.value.status_code == 200


def test_edit_response_not_json_raises(mocked: Any, provider: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, body=b"<html>oops</html>", content_type="text/html")
    with pytest.raises(ResponseValidationError):
        provider.edit_image(PROMPT, PNG_2)


def test_json_edit_response_is_validated_too(mocked: Any, provider: Any) -> None:
    mocked.add(responses.POST, EDITS_URL, json={"created": 1, "data": [{}]})
    with pytest.raises(ResponseValidationError):
        provider.edit_image_from_refs(PROMPT, [{"file_id": "file-1"}])


# -- JSON form: edit_image_from_refs ---------------------------------------------------


def test_json_edit_sends_images_exactly(mocked: Any, provider: Any) -> None:
    refs = [{"image_url": "https://example.com/a.png"}, {"file_id": "file-abc"}]
    call = refs_call(
        mocked,
        provider,
        PROMPT,
        refs,
        mask={"file_id": "file-mask"},
        moderation="low",
        output_format="jpeg",
        output_compression=50,
        n=2,
    )
    request = call.request
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == (
        b'{"prompt":"Add a red scarf","images":[{"image_url":"https://example.com/a.png"},{"file_id":"file-abc"}],'
        b'"mask":{"file_id":"file-mask"},"model":"gpt-image-2","n":2,"output_format":"jpeg",'
        b'"output_compression":50,"moderation":"low"}'
    )


def test_json_edit_accepts_a_tuple_of_refs_and_data_urls(mocked: Any, provider: Any) -> None:
    url = imageprovider.image_data_url(PNG_2)
    call = refs_call(mocked, provider, PROMPT, ({"image_url": url},), model="gpt-image-1", input_fidelity="high")
    assert json.loads(call.request.body) == {
        "prompt": PROMPT,
        "images": [{"image_url": url}],
        "model": "gpt-image-1",
        "input_fidelity": "high",
    }


def test_json_edit_input_fidelity_rejected_for_gpt_image_2(mocked: Any, provider: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [{"file_id": "f"}], input_fidelity="high")
    assert error.param == "input_fidelity"


@pytest.mark.parametrize(
    "ref, path",
    [
        ({"image_url": "https://example.com/a.png", "file_id": "file-abc"}, ("images", 0)),
        ({}, ("images", 0)),
        ({"image_url": "https://example.com/a.png", "detail": "high"}, ("images", 0, "detail")),
        ({"image_url": ""}, ("images", 0, "image_url")),
    ],
    ids=["both", "neither", "extra-key", "empty-url"],
)
def test_bad_refs_are_rejected_naming_images(mocked: Any, provider: Any, ref: Any, path: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [ref])
    assert error.param == "images"
    assert error.path == path


def test_bad_second_ref_is_located(mocked: Any, provider: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [{"file_id": "a"}, {"file_id": "b", "image_url": "c"}])
    assert (error.param, error.path) == ("images", ("images", 1))


@pytest.mark.parametrize("images", [[], [{"file_id": "f"}] * 17], ids=["none", "seventeen"])
def test_ref_count_is_checked(mocked: Any, provider: Any, images: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, images)
    assert error.param == "images"


def test_bad_mask_ref_is_rejected(mocked: Any, provider: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [{"file_id": "f"}], mask={"file_id": "m", "image_url": "u"})
    assert error.param == "mask"


def test_dall_e_2_is_refused_for_json_edits(mocked: Any, provider: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [{"file_id": "f"}], model="dall-e-2")
    assert error.param == "model"


def test_dall_e_3_is_refused_for_json_edits(mocked: Any, provider: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [{"file_id": "f"}], model="dall-e-3")
    assert error.param == "model"


def test_json_edit_refuses_stream(mocked: Any, provider: Any) -> None:
    error = refs_rejected(mocked, provider, PROMPT, [{"file_id": "f"}], extra_body={"stream": True})
    assert error.param == "stream"


# -- image_data_url ---------------------------------------------------------------------


#: A 1x1 black RGB PNG, spelled out (zlib output may differ between zlib builds), and its exact data URL.
TINY_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
    b"\x00\x00\x00\x0cIDATx\x9cc```\x00\x00\x00\x04\x00\x01\xf6\x178U\x00\x00\x00\x00IEND\xaeB`\x82"
)
TINY_PNG_DATA_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC"
)


def test_image_data_url_of_bytes_is_exact() -> None:
    assert imageprovider.image_data_url(TINY_PNG) == TINY_PNG_DATA_URL


def test_image_data_url_of_a_path(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "tiny.png", TINY_PNG)
    assert imageprovider.image_data_url(path) == TINY_PNG_DATA_URL
    assert imageprovider.image_data_url(str(path)) == TINY_PNG_DATA_URL


def test_image_data_url_uses_the_sniffed_type(tmp_path: pathlib.Path) -> None:
    url = imageprovider.image_data_url(write(tmp_path, "photo.png", JPEG_3x2))
    assert url == "data:image/jpeg;base64," + base64.b64encode(JPEG_3x2).decode("ascii")
    assert imageprovider.image_data_url(WEBP_5x4).startswith("data:image/webp;base64,")


@pytest.mark.parametrize("value", [GIF, b"", "/nonexistent/dir/x.png"], ids=["gif", "empty", "missing"])
def test_image_data_url_rejects_what_is_not_an_image(value: Any) -> None:
    with pytest.raises(RequestValidationError):
        imageprovider.image_data_url(value)
