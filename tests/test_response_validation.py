"""Success bodies are validated before use and turned into read-only result objects."""

import base64
import dataclasses
import json

import pytest
from helpers import GENERATIONS_URL, PNG, PNG_B64, images_body

from imageprovider import ImageResponse, ImageUsage, ResponseValidationError
from imageprovider.results import InlineBytes, RateLimits, parse_duration, sniff_mime_type

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "


def _expect_invalid(mocked, provider, **response):
    mocked.add("POST", GENERATIONS_URL, headers={"x-request-id": "req_bad"}, **response)
    with pytest.raises(ResponseValidationError) as caught:
        provider.generate_image("an otter")
    error = caught.value
    assert error.status_code == 200
    assert error.request_id == "req_bad"
    assert "req_bad" in str(error)
    return error


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"",
        b'{"created": 1, "data": [',
        b"\xff\xfe\x00garbage",
        b"[" * 100000 + b"]" * 100000,
    ],
    ids=["html", "empty", "truncated", "not-utf8", "deeply-nested"],
)
def test_body_that_is_not_json_raises_response_validation_error(mocked, provider, body):
    """Never a ValueError, UnicodeDecodeError or RecursionError: one typed error with the body's start (a body
    nested past the depth limit is stopped while it arrives, before anything is parsed)."""
    error = _expect_invalid(mocked, provider, body=body, content_type="application/json")
    if body.startswith(b"[["):
        assert "nested more than 64 levels deep" in error.message
        return
    assert "not valid JSON" in error.message
    assert error.body is not None and len(error.body) <= 600


@pytest.mark.parametrize(
    "body, path",
    [
        (None, ()),
        ([], ()),
        ({"data": [{"b64_json": PNG_B64}]}, ("created",)),
        ({"created": "yesterday", "data": [{"b64_json": PNG_B64}]}, ("created",)),
        ({"created": 1}, ("data",)),
        ({"created": 1, "data": []}, ("data",)),
        ({"created": 1, "data": {"b64_json": PNG_B64}}, ("data",)),
        ({"created": 1, "data": ["iVBOR"]}, ("data", 0)),
        ({"created": 1, "data": [{}]}, ("data", 0)),
        ({"created": 1, "data": [{"b64_json": 42}]}, ("data", 0, "b64_json")),
        ({"created": 1, "data": [{"url": None}]}, ("data", 0, "url")),
        (
            {
                "created": 1,
                "data": [{"b64_json": PNG_B64}],
                "usage": {"input_tokens": "5", "output_tokens": 1, "total_tokens": 6},
            },
            ("usage", "input_tokens"),
        ),
        (
            {
                "created": 1,
                "data": [{"b64_json": PNG_B64}],
                "usage": {"input_tokens": 1.5, "output_tokens": 1, "total_tokens": 6},
            },
            ("usage", "input_tokens"),
        ),
        ({"created": 1, "data": [{"b64_json": PNG_B64}], "usage": {"input_tokens": 1}}, ("usage",)),
    ],
    ids=[
        "null",
        "array",
        "no-created",
        "created-string",
        "no-data",
        "empty-data",
        "data-object",
        "item-string",
        "item-empty",
        "b64-int",
        "url-null",
        "tokens-string",
        "tokens-float",
        "usage-incomplete",
    ],
)
def test_schema_violations_raise_with_the_failing_path(mocked, provider, body, path):
    """Off-schema bodies never cause KeyError or TypeError; the error names where they fail."""
    error = _expect_invalid(mocked, provider, body=json.dumps(body), content_type="application/json")
    assert error.path[: len(path)] == path
    assert "does not match" in error.message


def test_large_invalid_body_is_truncated_in_the_error(mocked, provider):
    """The error keeps only the start of a multi-megabyte body."""
    error = _expect_invalid(mocked, provider, json={"created": 1, "data": [{"b64_json": 7}], "pad": "x" * 10**6})
    assert len(error.body) < 600


def test_lenient_where_the_official_description_is_too_narrow(mocked, provider):
    """Custom sizes, new quality names and unknown extra fields are accepted."""
    mocked.add(
        "POST",
        GENERATIONS_URL,
        json=images_body(size="1536x864", quality="ultra", background="auto", novel_field={"a": 1}),
    )
    result = provider.generate_image("an otter", size="1536x864")
    assert result.size == "1536x864"
    assert result.quality == "ultra"
    assert result.raw["novel_field"] == {"a": 1}


def test_result_fields_and_typed_usage(mocked, provider):
    """Every documented field is exposed; usage is typed."""
    body = images_body(count=2)
    body["usage"]["output_tokens_details"] = {"image_tokens": 45, "text_tokens": 5}
    mocked.add("POST", GENERATIONS_URL, json=body, headers={"x-request-id": "req_42"})
    result = provider.generate_image("an otter", n=2)
    assert isinstance(result, ImageResponse)
    assert result.created == 1713833628
    assert len(result.images) == 2
    assert [image.index for image in result.images] == [0, 1]
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1024x1024",
        "high",
        "png",
        "opaque",
    )
    assert result.request_id == "req_42"
    assert result.raw == body
    assert isinstance(result.usage, ImageUsage)
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (50, 50, 100)
    assert result.usage.input_tokens_details.text_tokens == 10
    assert result.usage.input_tokens_details.image_tokens == 40
    assert result.usage.output_tokens_details.image_tokens == 45


def test_usage_may_be_absent_or_null(mocked, provider):
    """DALL-E answers carry no usage."""
    mocked.add(
        "POST",
        GENERATIONS_URL,
        json={
            "created": 1,
            "data": [{"url": "https://files.example/a.png", "revised_prompt": "An otter, floating"}],
            "usage": None,
        },
    )
    result = provider.generate_image("an otter", model="dall-e-3")
    assert result.usage is None
    image = result.images[0]
    assert image.url == "https://files.example/a.png"
    assert image.revised_prompt == "An otter, floating"
    assert image.data is None and image.mime_type is None


def test_results_are_read_only(mocked, provider):
    """Result objects cannot be changed after the fact."""
    mocked.add("POST", GENERATIONS_URL, json=images_body())
    result = provider.generate_image("an otter")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.created = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.images[0].b64_json = ""
    assert isinstance(result.images, tuple)


def test_image_bytes_are_decoded_on_arrival_and_sniffed(mocked, provider):
    """Each image's bytes are decoded as the body arrives; .mime_type comes from the bytes, not the request."""
    mocked.add(
        "POST",
        GENERATIONS_URL,
        json=images_body(
            output_format="jpeg",
            data=[
                {"b64_json": PNG_B64},
                {"b64_json": base64.b64encode(JPEG).decode()},
                {"b64_json": base64.b64encode(WEBP).decode()},
                {"b64_json": base64.b64encode(b"GIF89a").decode()},
                {"b64_json": base64.b64encode(b"\xef\xbb\xbf<?xml version='1.0'?>\n<svg/>").decode()},
                {"b64_json": base64.b64encode(b"BM not an image we know").decode()},
            ],
        ),
    )
    result = provider.generate_image("an otter", n=6)
    assert result.images[0].source == InlineBytes(PNG)
    assert result.images[0].data == PNG
    assert result.images[0].data is result.images[0].data
    assert [image.mime_type for image in result.images] == [
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/gif",
        "image/svg+xml",
        None,
    ]


def test_invalid_base64_fails_the_call(mocked, provider):
    """Regression (issue 13, bug 10): a 200 whose second image is not base64 used to be returned as a
    success, failing only at ``.data``; the body is known bad while it is read, so the call fails."""
    mocked.add(
        "POST",
        GENERATIONS_URL,
        json=images_body(data=[{"b64_json": PNG_B64}, {"b64_json": "not*base64!"}]),
        headers={"x-request-id": "req_bad_b64"},
    )
    with pytest.raises(ResponseValidationError) as caught:
        provider.generate_image("an otter", n=2)
    assert caught.value.path == ("data", 1, "b64_json")
    assert (caught.value.status_code, caught.value.request_id) == (200, "req_bad_b64")


def test_invalid_base64_built_by_hand_raises_on_access():
    """A GeneratedImage made from corrupt base64 raises a ResponseValidationError naming it, not a binascii.Error."""
    from imageprovider import GeneratedImage

    image = GeneratedImage(b64_json="not*base64!", index=3)
    with pytest.raises(ResponseValidationError) as caught:
        _ = image.data
    assert caught.value.path == ("data", 3, "b64_json")


def test_rate_limit_headers_are_parsed(mocked, provider):
    """Limits and remaining counts as ints, resets as seconds."""
    mocked.add(
        "POST",
        GENERATIONS_URL,
        json=images_body(),
        headers={
            "x-ratelimit-limit-requests": "50",
            "x-ratelimit-remaining-requests": "49",
            "x-ratelimit-reset-requests": "1.2s",
            "x-ratelimit-limit-tokens": "100000",
            "X-RateLimit-Remaining-Tokens": "99000",
            "x-ratelimit-reset-tokens": "6m0s",
        },
    )
    limits = provider.generate_image("an otter").rate_limits
    assert limits == RateLimits(
        limit_requests=50,
        limit_tokens=100000,
        remaining_requests=49,
        remaining_tokens=99000,
        reset_requests=1.2,
        reset_tokens=360.0,
    )


def test_missing_or_odd_rate_limit_headers_give_none():
    """Azure's -1 and unparsable values are None, not errors."""
    limits = RateLimits.from_headers(
        {
            "x-ratelimit-remaining-requests": "-1",
            "x-ratelimit-reset-tokens": "soon",
            "x-ratelimit-limit-requests": "many",
        }
    )
    assert limits == RateLimits()


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("12ms", 0.012),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("20s", 20.0),
        ("1.5", 1.5),
        ("0s", 0.0),
        ("", None),
        ("5 minutes", None),
        ("-3", None),
        (None, None),
    ],
)
def test_parse_duration(text, seconds):
    """OpenAI's reset durations in seconds."""
    result = parse_duration(text)
    assert result == (pytest.approx(seconds) if seconds is not None else None)


def test_sniff_needs_the_whole_signature():
    """A truncated signature is not a match."""
    assert sniff_mime_type(PNG[:7]) is None
    assert sniff_mime_type(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff_mime_type(PNG) == "image/png"
