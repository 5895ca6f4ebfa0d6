"""Variations (create_variation): one square PNG uploaded as the multipart field ``image``.

Only dall-e-2 serves /images/variations; it is the default model here and is
always sent.
"""

import io
import pathlib
from typing import Any, List

import pytest
import responses
from helpers import API_KEY, BASE_URL, GIF, Part, images_body, make_jpeg, make_png, make_webp, multipart_parts

from imageprovider import ImageResponse, OpenAIImageProvider, RequestValidationError, ResponseValidationError

VARIATIONS_URL = BASE_URL + "/images/variations"
MB = 1024 * 1024
IMAGE_URL = "https://oaidalleapiprodscus.blob.core.windows.net/private/img-1.png?sig=abc"


# -- test images ---------------------------------------------------------------------


SQUARE = make_png(4, 4)
SQUARE_RGBA = make_png(4, 4, 6)
WIDE = make_png(4, 2)


# -- helpers -------------------------------------------------------------------------


def parts(call: Any) -> List[Part]:
    """The (name, filename, content type, payload) of each part of the call's multipart request."""
    return multipart_parts(call.request)


def text(name: str, value: str) -> Part:
    return (name, None, "text/plain", value.encode("utf-8"))


def url_body(count: int = 1) -> Any:
    return {"created": 1713833628, "data": [{"url": IMAGE_URL} for _ in range(count)]}


def vary(mocked: responses.RequestsMock, provider: OpenAIImageProvider, *args: Any, **kwargs: Any) -> Any:
    """Call create_variation against a 200 response; return (result, call)."""
    mocked.add(responses.POST, VARIATIONS_URL, json=url_body())
    result = provider.create_variation(*args, **kwargs)
    assert isinstance(result, ImageResponse)
    assert len(mocked.calls) == 1
    return result, mocked.calls[0]


def rejected(
    mocked: responses.RequestsMock, provider: OpenAIImageProvider, *args: Any, **kwargs: Any
) -> RequestValidationError:
    mocked.add(responses.POST, VARIATIONS_URL, json=url_body())
    with pytest.raises(RequestValidationError) as caught:
        provider.create_variation(*args, **kwargs)
    assert len(mocked.calls) == 0
    return caught.value


# -- the request ---------------------------------------------------------------------


def test_default_request_sends_dall_e_2_and_the_image(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "square.png"
    path.write_bytes(SQUARE)
    _, call = vary(mocked, provider, str(path))
    assert call.request.url == VARIATIONS_URL
    assert call.request.headers["Authorization"] == "Bearer " + API_KEY
    assert parts(call) == [text("model", "dall-e-2"), ("image", "square.png", "image/png", SQUARE)]


def test_all_fields_in_signature_order(mocked: Any, provider: Any) -> None:
    _, call = vary(
        mocked, provider, ("in.png", SQUARE, "image/png"), user="u-1", response_format="url", size="256x256", n=3
    )
    assert parts(call) == [
        text("model", "dall-e-2"),
        text("n", "3"),
        text("size", "256x256"),
        text("response_format", "url"),
        text("user", "u-1"),
        ("image", "in.png", "image/png", SQUARE),
    ]


def test_bytes_input_is_a_png_part_named_image(mocked: Any, provider: Any) -> None:
    """Uploaded as the scalar field 'image' (never 'image[]'), with a real PNG type and a .png name."""
    _, call = vary(mocked, provider, SQUARE_RGBA)
    assert parts(call)[-1] == ("image", "image.png", "image/png", SQUARE_RGBA)


def test_mislabelled_name_does_not_change_the_type(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(SQUARE)
    _, call = vary(mocked, provider, path)
    assert parts(call)[-1] == ("image", "photo.jpg", "image/png", SQUARE)


def test_caller_file_object_is_left_open(mocked: Any, provider: Any) -> None:
    stream = io.BytesIO(SQUARE)
    _, call = vary(mocked, provider, stream)
    assert stream.closed is False
    assert parts(call)[-1][2:] == ("image/png", SQUARE)


def test_model_given_in_extra_body_replaces_the_default(mocked: Any, provider: Any) -> None:
    """For compatible servers: a model in extra_body is sent instead of dall-e-2, once."""
    _, call = vary(mocked, provider, SQUARE, extra_body={"model": "my-variation-model"})
    assert [part for part in parts(call) if part[0] == "model"] == [text("model", "my-variation-model")]


def test_none_parameters_are_not_sent(mocked: Any, provider: Any) -> None:
    _, call = vary(mocked, provider, SQUARE, n=None, size=None, response_format=None, user=None)
    assert [part[0] for part in parts(call)] == ["model", "image"]


# -- checked before sending -------------------------------------------------------


@pytest.mark.parametrize("image", [WIDE, make_png(2, 4, 6)], ids=["wide", "tall-rgba"])
def test_non_square_png_is_rejected(mocked: Any, provider: Any, image: bytes) -> None:
    error = rejected(mocked, provider, image)
    assert (error.param, error.path) == ("image", ("image",))


@pytest.mark.parametrize("image", [make_jpeg(4, 4), make_webp(4, 4)], ids=["jpeg", "webp"])
def test_non_png_is_rejected(mocked: Any, provider: Any, image: bytes) -> None:
    error = rejected(mocked, provider, image)
    assert (error.param, error.path) == ("image", ("image",))


def test_gif_is_rejected(mocked: Any, provider: Any) -> None:
    error = rejected(mocked, provider, ("x.png", GIF, "image/png"))
    assert (error.param, error.path) == ("image", ("image",))


def test_png_over_4_mb_is_rejected(mocked: Any, provider: Any) -> None:
    error = rejected(mocked, provider, SQUARE + bytes(4 * MB + 1 - len(SQUARE)))
    assert (error.param, error.path) == ("image", ("image",))


def test_several_images_are_rejected(mocked: Any, provider: Any) -> None:
    error = rejected(mocked, provider, [SQUARE, SQUARE])
    assert error.param == "image"


def test_missing_file_is_rejected(mocked: Any, provider: Any, tmp_path: pathlib.Path) -> None:
    error = rejected(mocked, provider, tmp_path / "missing.png")
    assert (error.param, error.path) == ("image", ("image",))


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1", "dall-e-3"])
def test_models_without_variations_are_rejected(mocked: Any, provider: Any, model: str) -> None:
    error = rejected(mocked, provider, SQUARE, model=model)
    assert error.param == "model"


@pytest.mark.parametrize("size", ["1536x1024", "2048x2048"])
def test_sizes_dall_e_2_does_not_offer_are_rejected(mocked: Any, provider: Any, size: str) -> None:
    error = rejected(mocked, provider, SQUARE, size=size)
    assert error.param == "size"


def test_response_format_outside_the_enum_is_rejected(mocked: Any, provider: Any) -> None:
    error = rejected(mocked, provider, SQUARE, response_format="png")
    assert error.param == "response_format"


# -- the response ---------------------------------------------------------------------


def test_url_results_are_parsed(mocked: Any, provider: Any) -> None:
    result, _ = vary(mocked, provider, SQUARE, response_format="url")
    assert result.images[0].url == IMAGE_URL
    assert len(result.images) == 1


def test_b64_results_are_parsed(mocked: Any, provider: Any) -> None:
    mocked.add(responses.POST, VARIATIONS_URL, json=images_body(2))
    result = provider.create_variation(SQUARE, n=2, response_format="b64_json")
    assert len(result.images) == 2
    assert result.images[1].data.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "body",
    [{"created": 1, "data": []}, {"created": 1, "data": [{"url": ""}]}, []],
    ids=["empty-data", "empty-url", "list"],
)
def test_schema_violating_response_raises(mocked: Any, provider: Any, body: Any) -> None:
    mocked.add(responses.POST, VARIATIONS_URL, json=body)
    with pytest.raises(ResponseValidationError):
        provider.create_variation(SQUARE)


@pytest.mark.parametrize("method", ["create_variation", "generate_image"])
def test_regression_a_model_given_twice_is_refused_by_every_method(mocked, method):
    """Regression (issue 13, bug 7): create_variation(model="dall-e-2", extra_body={"model": ...}) silently
    sent the other model, where generate_image refused the same; both refuse it now, sending nothing."""
    with OpenAIImageProvider(api_key=API_KEY, check_model_rules=False) as provider:
        call = getattr(provider, method)
        first = SQUARE if method == "create_variation" else "A square"
        with pytest.raises(RequestValidationError) as caught:
            call(first, model="dall-e-2", extra_body={"model": "my-variation-model"})
    assert caught.value.param == "model"
    assert "given both" in str(caught.value)
    assert len(mocked.calls) == 0
