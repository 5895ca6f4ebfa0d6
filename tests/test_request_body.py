"""The exact bytes and headers generate_image puts on the wire.

Bodies are compact UTF-8 JSON: ``prompt``, ``model``, then the given
parameters in signature order, then ``extra_body`` fields. Parameters left
out or passed as ``None`` are not sent; ``model`` always is.
"""

import json
from typing import Any, Dict

import pytest
import responses
from helpers import API_KEY, BEFORE_SHUTDOWNS, GENERATIONS_URL, images_body

import imageprovider
from imageprovider import DEFAULT_MODEL, OpenAIImageProvider, RequestValidationError

OTTER = "A cute baby sea otter"


# -- helpers -----------------------------------------------------------------


def send(mocked: responses.RequestsMock, prompt: Any = OTTER, provider_options: Any = None, **kwargs: Any) -> Any:
    """Call generate_image against a 200 response and return the one request that was sent."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    with OpenAIImageProvider(api_key=API_KEY, **{"clock": BEFORE_SHUTDOWNS, **(provider_options or {})}) as provider:
        provider.generate_image(prompt, **kwargs)
    assert len(mocked.calls) == 1
    return mocked.calls[0].request


def sent_body(
    mocked: responses.RequestsMock, prompt: Any = OTTER, provider_options: Any = None, **kwargs: Any
) -> bytes:
    """The exact body bytes generate_image sent."""
    body = send(mocked, prompt, provider_options, **kwargs).body
    assert isinstance(body, bytes)
    return body


def rejected(
    mocked: responses.RequestsMock, prompt: Any = OTTER, provider_options: Any = None, **kwargs: Any
) -> RequestValidationError:
    """Call generate_image expecting a RequestValidationError; check nothing was sent and return the error."""
    with OpenAIImageProvider(api_key=API_KEY, **{"clock": BEFORE_SHUTDOWNS, **(provider_options or {})}) as provider:
        with pytest.raises(RequestValidationError) as excinfo:
            provider.generate_image(prompt, **kwargs)
    assert type(excinfo.value) is RequestValidationError
    assert len(mocked.calls) == 0
    return excinfo.value


# -- exact bytes -------------------------------------------------------------------


def test_size_request_exact_bytes(mocked: Any) -> None:
    """The README example: prompt, model, size, compact separators."""
    assert sent_body(mocked, size="1024x1024") == (
        b'{"prompt":"A cute baby sea otter","model":"gpt-image-2","size":"1024x1024"}'
    )


def test_prompt_only_request_sends_prompt_and_default_model(mocked: Any) -> None:
    """With nothing but a prompt, the body holds prompt and model only."""
    assert sent_body(mocked) == b'{"prompt":"A cute baby sea otter","model":"gpt-image-2"}'


def test_parameters_passed_as_none_are_not_sent(mocked: Any) -> None:
    """Explicit None means 'not given' for every optional parameter."""
    body = sent_body(
        mocked,
        model=None,
        n=None,
        size=None,
        quality=None,
        background=None,
        output_format=None,
        output_compression=None,
        moderation=None,
        style=None,
        response_format=None,
        user=None,
        extra_body=None,
        timeout=None,
    )
    assert body == b'{"prompt":"A cute baby sea otter","model":"gpt-image-2"}'


def test_gpt_parameters_sent_in_signature_order(mocked: Any) -> None:
    """Keyword order at the call site does not matter: the body follows the signature."""
    body = sent_body(
        mocked,
        user="user-1",
        moderation="low",
        output_compression=80,
        output_format="webp",
        background="opaque",
        quality="high",
        size="1536x1024",
        n=2,
    )
    assert body == (
        b'{"prompt":"A cute baby sea otter","model":"gpt-image-2","n":2,"size":"1536x1024","quality":"high",'
        b'"background":"opaque","output_format":"webp","output_compression":80,"moderation":"low",'
        b'"user":"user-1"}'
    )


def test_dalle_3_parameters_sent_in_signature_order(mocked: Any) -> None:
    """style comes before response_format, then user."""
    body = sent_body(
        mocked,
        user="u",
        response_format="b64_json",
        style="natural",
        quality="hd",
        size="1792x1024",
        n=1,
        model="dall-e-3",
    )
    assert body == (
        b'{"prompt":"A cute baby sea otter","model":"dall-e-3","n":1,"size":"1792x1024","quality":"hd",'
        b'"style":"natural","response_format":"b64_json","user":"u"}'
    )


def test_every_parameter_in_signature_order_then_extra_body(mocked: Any) -> None:
    """All parameters at once (model rules off) keep signature order; extra_body fields come last."""
    body = sent_body(
        mocked,
        provider_options={"check_model_rules": False},
        extra_body={"seed": 7, "tag": "x"},
        user="u",
        response_format="url",
        style="vivid",
        moderation="auto",
        output_compression=0,
        output_format="jpeg",
        background="auto",
        quality="auto",
        size="auto",
        n=3,
        model="some-model",
    )
    assert body == (
        b'{"prompt":"A cute baby sea otter","model":"some-model","n":3,"size":"auto","quality":"auto",'
        b'"background":"auto","output_format":"jpeg","output_compression":0,"moderation":"auto",'
        b'"style":"vivid","response_format":"url","user":"u","seed":7,"tag":"x"}'
    )


def test_falsy_values_other_than_none_are_sent(mocked: Any) -> None:
    """Only None means 'not given': 0 and the empty string are sent."""
    body = sent_body(mocked, output_format="jpeg", output_compression=0, user="")
    assert body == (
        b'{"prompt":"A cute baby sea otter","model":"gpt-image-2","output_format":"jpeg",'
        b'"output_compression":0,"user":""}'
    )


def test_non_ascii_prompt_is_sent_as_raw_utf8(mocked: Any) -> None:
    """Non-ASCII text goes out as UTF-8 bytes, not \\u escapes."""
    prompt = "Une loutre tr\u00e8s mignonne \u2014 \u6d77\u737a \U0001f9a6"
    body = sent_body(mocked, prompt)
    assert body == ('{"prompt":"' + prompt + '","model":"gpt-image-2"}').encode("utf-8")
    assert b"\\u" not in body
    assert "\U0001f9a6".encode("utf-8") in body


def test_quotes_backslashes_and_newlines_in_prompt_are_json_escaped(mocked: Any) -> None:
    """Characters JSON must escape are escaped; the body stays valid JSON."""
    body = sent_body(mocked, 'Say "hi"\\\n\tnow')
    assert body == b'{"prompt":"Say \\"hi\\"\\\\\\n\\tnow","model":"gpt-image-2"}'


# -- model -------------------------------------------------------------------------


def test_default_model_constant_is_gpt_image_2() -> None:
    """The library's default model is gpt-image-2 (the API's own default, dall-e-2, is retired)."""
    assert DEFAULT_MODEL == "gpt-image-2"
    assert imageprovider.DEFAULT_MODEL == "gpt-image-2"
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.default_model == DEFAULT_MODEL


def test_default_model_argument_changes_model_sent(mocked: Any) -> None:
    """default_model= on the provider is what calls without a model send."""
    body = sent_body(mocked, provider_options={"default_model": "gpt-image-1.5"})
    assert body == b'{"prompt":"A cute baby sea otter","model":"gpt-image-1.5"}'


def test_environment_variable_changes_model_sent(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAGEPROVIDER_MODEL sets the default model."""
    monkeypatch.setenv("IMAGEPROVIDER_MODEL", "gpt-image-1-mini")
    body = sent_body(mocked)
    assert body == b'{"prompt":"A cute baby sea otter","model":"gpt-image-1-mini"}'


def test_default_model_argument_beats_environment(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An argument wins over the environment."""
    monkeypatch.setenv("IMAGEPROVIDER_MODEL", "gpt-image-1-mini")
    body = sent_body(mocked, provider_options={"default_model": "gpt-image-1"})
    assert body == b'{"prompt":"A cute baby sea otter","model":"gpt-image-1"}'


def test_model_argument_beats_default_model(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """model= on the call wins over the provider's default."""
    monkeypatch.setenv("IMAGEPROVIDER_MODEL", "gpt-image-1-mini")
    body = sent_body(mocked, provider_options={"default_model": "gpt-image-1"}, model="dall-e-3")
    assert body == b'{"prompt":"A cute baby sea otter","model":"dall-e-3"}'


# -- headers -------------------------------------------------------------------------


def test_request_headers(mocked: Any) -> None:
    """JSON content type, Bearer key, imageprovider User-Agent, sent to the generations URL with POST."""
    request = send(mocked)
    assert request.method == "POST"
    assert request.url == GENERATIONS_URL
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer " + API_KEY
    assert request.headers["User-Agent"].startswith("imageprovider/" + imageprovider.__version__ + " ")
    assert request.headers["Accept"] == "application/json"
    assert int(request.headers["Content-Length"]) == len(request.body)


# -- extra_body ---------------------------------------------------------------------


def test_extra_body_unknown_fields_sent_unvalidated(mocked: Any) -> None:
    """Fields the schema does not know are passed through as given, after the parameters."""
    body = sent_body(mocked, size="1024x1024", extra_body={"seed": 42, "custom": {"a": [1, None, True]}})
    assert body == (
        b'{"prompt":"A cute baby sea otter","model":"gpt-image-2","size":"1024x1024",'
        b'"seed":42,"custom":{"a":[1,null,true]}}'
    )


def test_extra_body_known_field_is_sent(mocked: Any) -> None:
    """A valid known field given through extra_body is sent like the argument would be."""
    body = sent_body(mocked, extra_body={"n": 2})
    assert body == b'{"prompt":"A cute baby sea otter","model":"gpt-image-2","n":2}'


@pytest.mark.parametrize(
    "extra_body, param",
    [
        ({"n": "two"}, "n"),
        ({"quality": 5}, "quality"),
        ({"output_compression": 101}, "output_compression"),
        ({"partial_images": "4"}, "partial_images"),
        ({"stream": "yes"}, "stream"),
        ({"svg": "potrace"}, "svg"),
        ({"frame_count": 2.5}, "frame_count"),
    ],
)
def test_extra_body_known_field_is_type_checked(mocked: Any, extra_body: Dict[str, Any], param: str) -> None:
    """Fields the schema knows are type-checked even when they come through extra_body."""
    error = rejected(mocked, extra_body=extra_body)
    assert error.param == param
    assert repr(param) in str(error)


@pytest.mark.parametrize(
    "extra_body",
    [{"quality": "ultra"}, {"partial_images": 4}, {"n": 40}, {"output_format": "avif"}, {"svg": {"model": "x"}}],
)
def test_extra_body_known_field_is_never_value_checked(mocked: Any, extra_body: Dict[str, Any]) -> None:
    """A well-typed value the model table would refuse as a keyword goes out as given through extra_body."""
    sent = json.loads(sent_body(mocked, extra_body=extra_body))
    assert {key: sent[key] for key in extra_body} == extra_body


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"n": 1, "extra_body": {"n": 2}}, "n"),
        ({"size": "1024x1024", "extra_body": {"size": "1024x1024"}}, "size"),
        ({"user": "a", "extra_body": {"user": "b"}}, "user"),
        ({"extra_body": {"prompt": "another prompt"}}, "prompt"),
        ({"model": "gpt-image-1", "extra_body": {"model": "gpt-image-2"}}, "model"),
    ],
)
def test_field_given_as_argument_and_in_extra_body_is_rejected(mocked: Any, kwargs: Dict[str, Any], param: str) -> None:
    """The same field twice is ambiguous and refused, naming the field."""
    error = rejected(mocked, **kwargs)
    assert error.param == param
    assert "both as an argument and in extra_body" in str(error)


@pytest.mark.parametrize("extra_body", [[("seed", 1)], "seed=1", 42, ("seed",)])
def test_extra_body_not_a_mapping_is_rejected(mocked: Any, extra_body: Any) -> None:
    """extra_body must be a mapping."""
    error = rejected(mocked, extra_body=extra_body)
    assert error.param == "extra_body"
    assert "mapping" in str(error)


def test_extra_body_non_string_key_is_rejected(mocked: Any) -> None:
    """JSON object keys are strings; extra_body keys must be too."""
    error = rejected(mocked, extra_body={1: "one"})
    assert error.param == "extra_body"


@pytest.mark.parametrize("provider_options", [{}, {"check_model_rules": False}])
def test_extra_body_stream_true_is_rejected(mocked: Any, provider_options: Dict[str, Any]) -> None:
    """generate_image returns whole images, so stream=True is refused (model rules on or off)."""
    error = rejected(mocked, provider_options=provider_options, extra_body={"stream": True})
    assert error.param == "stream"
    assert "stream" in str(error)


def test_extra_body_stream_false_is_sent(mocked: Any) -> None:
    """stream=False asks for the default and is harmless."""
    body = sent_body(mocked, extra_body={"stream": False})
    assert body == b'{"prompt":"A cute baby sea otter","model":"gpt-image-2","stream":false}'


# -- schema errors name the parameter ----------------------------------------------------


@pytest.mark.parametrize(
    "prompt, kwargs, param, fragment",
    [
        (OTTER, {"n": "2"}, "n", "must be of type integer"),
        (OTTER, {"n": 2.5}, "n", "must be of type integer"),
        (OTTER, {"n": True}, "n", "must be of type integer"),
        (OTTER, {"quality": "ultra"}, "quality", "must be one of"),
        (OTTER, {"size": ""}, "size", "must not be empty"),
        (OTTER, {"size": 1024}, "size", "must be of type string"),
        (OTTER, {"model": ""}, "model", "must not be empty"),
        (OTTER, {"model": 3}, "model", "must be of type string"),
        (OTTER, {"output_format": "gif"}, "output_format", "must be one of"),
        (OTTER, {"background": "clear"}, "background", "must be one of"),
        (OTTER, {"moderation": "high"}, "moderation", "must be one of"),
        (OTTER, {"user": 5}, "user", "must be of type string"),
        (123, {}, "prompt", "must be of type string"),
        (b"bytes prompt", {}, "prompt", "must be of type string"),
        ("", {}, "prompt", "must not be empty"),
    ],
)
def test_schema_error_names_the_parameter(
    mocked: Any, prompt: Any, kwargs: Dict[str, Any], param: str, fragment: str
) -> None:
    """Type, enum and length errors from the schema carry the parameter name."""
    error = rejected(mocked, prompt, **kwargs)
    assert error.param == param
    assert repr(param) in str(error)
    assert fragment in str(error)


# -- values that cannot be encoded as JSON -------------------------------------------------


def test_lone_surrogate_prompt_is_rejected(mocked: Any) -> None:
    """A lone surrogate is not valid Unicode and cannot be sent as UTF-8."""
    error = rejected(mocked, "\ud800")
    assert error.param == "prompt"
    assert "surrogate" in str(error)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_in_extra_body_is_rejected(mocked: Any, value: float) -> None:
    """NaN and infinities are not JSON; the error names the field."""
    error = rejected(mocked, extra_body={"seed": 1, "x": value})
    assert error.param == "x"


def test_unserialisable_extra_body_value_is_rejected(mocked: Any) -> None:
    """A value json cannot encode raises RequestValidationError, not TypeError."""
    error = rejected(mocked, extra_body={"when": object()})
    assert error.param == "when"


# -- long prompts are not echoed ---------------------------------------------------------------


@pytest.mark.parametrize("model, length", [("dall-e-3", 5000), ("dall-e-2", 5000), ("gpt-image-2", 40000)])
def test_rejected_long_prompt_is_not_echoed_in_message(mocked: Any, model: str, length: int) -> None:
    """The error for an over-long prompt states its length without repeating it."""
    prompt = "".join("abcdefghij"[i % 10] for i in range(length))
    error = rejected(mocked, prompt, model=model)
    assert error.param == "prompt"
    assert len(str(error)) < 300
    assert len(repr(error)) < 300
    assert prompt[:100] not in str(error)


def test_model_in_extra_body_replaces_the_default_model(mocked: Any) -> None:
    """A compatible server's model named only in extra_body is sent once, in place of the default."""
    body = sent_body(mocked, extra_body={"model": "my-server-model"})
    assert json.loads(body) == {"prompt": OTTER, "model": "my-server-model"}
