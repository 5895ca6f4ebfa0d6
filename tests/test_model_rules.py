"""Per-model request rules, applied before anything is sent.

Every rejected request must raise :class:`imageprovider.RequestValidationError`
naming the parameter at fault, and the mock must have seen no call at all.
Every accepted request must reach the (mocked) API exactly once.

The providers here run on a clock before every shutdown (``before_shutdowns``),
so the older models' rules are tested as they applied while they were served;
shutdowns themselves are tested in test_model_table.py.
"""

import json
from typing import Any, Dict

import pytest
import responses
from helpers import API_KEY, GENERATIONS_URL, before_shutdowns, images_body

from imageprovider import OpenAIImageProvider, RequestValidationError

GPT_IMAGE_MODELS = (
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
)
FIXED_SIZE_GPT_MODELS = ("gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini")
DALLE_MODELS = ("dall-e-2", "dall-e-3")

PROMPT_LIMITS = [(model, 32000) for model in GPT_IMAGE_MODELS] + [("dall-e-3", 4000), ("dall-e-2", 1000)]


# -- helpers -----------------------------------------------------------------


def assert_rejected(
    mocked: responses.RequestsMock,
    param: str,
    fragment: str,
    prompt: str = "A lighthouse",
    provider_options: Any = None,
    **kwargs: Any,
) -> RequestValidationError:
    """Call generate_image, expect a RequestValidationError naming ``param``, and check nothing was sent."""
    options = {"clock": before_shutdowns(), **(provider_options or {})}
    with OpenAIImageProvider(api_key=API_KEY, **options) as provider:
        with pytest.raises(RequestValidationError) as excinfo:
            provider.generate_image(prompt, **kwargs)
    error = excinfo.value
    assert type(error) is RequestValidationError
    assert error.param == param, str(error)
    assert fragment in str(error)
    assert len(mocked.calls) == 0
    return error


def assert_sent(
    mocked: responses.RequestsMock, prompt: str = "A lighthouse", provider_options: Any = None, **kwargs: Any
) -> Dict[str, Any]:
    """Call generate_image against a 200 response; check it was sent once and return the JSON body sent."""
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    options = {"clock": before_shutdowns(), **(provider_options or {})}
    with OpenAIImageProvider(api_key=API_KEY, **options) as provider:
        result = provider.generate_image(prompt, **kwargs)
    assert len(result.images) == 1
    assert len(mocked.calls) == 1
    assert mocked.calls[0].request.url == GENERATIONS_URL
    sent = json.loads(mocked.calls[0].request.body)
    assert isinstance(sent, dict)
    return sent


# -- prompt length -----------------------------------------------------------


@pytest.mark.parametrize("model, limit", PROMPT_LIMITS)
def test_prompt_exactly_at_model_limit_is_sent(mocked: Any, model: str, limit: int) -> None:
    """A prompt of exactly the model's maximum length goes out unchanged."""
    prompt = "a" * limit
    sent = assert_sent(mocked, prompt, model=model)
    assert sent["prompt"] == prompt
    assert sent["model"] == model


@pytest.mark.parametrize("model, limit", PROMPT_LIMITS)
def test_prompt_one_over_model_limit_is_rejected(mocked: Any, model: str, limit: int) -> None:
    """One character over the model's maximum is refused before sending."""
    assert_rejected(mocked, "prompt", "characters long", "a" * (limit + 1), model=model)


def test_prompt_limit_counts_characters_not_bytes(mocked: Any) -> None:
    """1000 multi-byte characters fit dall-e-2's 1000-character limit."""
    prompt = "\u00e9" * 1000
    sent = assert_sent(mocked, prompt, model="dall-e-2")
    assert sent["prompt"] == prompt


# -- n -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, n, fragment",
    [
        ("gpt-image-2", 0, "at least 1"),
        ("gpt-image-2", -1, "at least 1"),
        ("gpt-image-2", 11, "at most 10"),
        ("gpt-image-1", 11, "at most 10"),
        ("dall-e-2", 0, "at least 1"),
        ("dall-e-2", 11, "at most 10"),
        ("dall-e-3", 2, "at most 1"),
        ("dall-e-3", 10, "at most 1"),
        ("dall-e-3", 0, "at least 1"),
    ],
)
def test_n_out_of_range_is_rejected(mocked: Any, model: str, n: int, fragment: str) -> None:
    """n outside 1-10 fails the schema; dall-e-3 takes only n=1."""
    assert_rejected(mocked, "n", fragment, model=model, n=n)


@pytest.mark.parametrize(
    "model, n",
    [
        ("gpt-image-2", 1),
        ("gpt-image-2", 10),
        ("gpt-image-1", 10),
        ("gpt-image-1-mini", 5),
        ("dall-e-2", 10),
        ("dall-e-3", 1),
    ],
)
def test_n_in_range_is_sent(mocked: Any, model: str, n: int) -> None:
    """n within the model's range is sent as given."""
    sent = assert_sent(mocked, model=model, n=n)
    assert sent["n"] == n


# -- fixed sizes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "model, size",
    [
        (model, size)
        for model in FIXED_SIZE_GPT_MODELS + ("gpt-image-2",)
        for size in ("1024x1024", "1536x1024", "1024x1536", "auto")
    ]
    + [
        ("dall-e-2", "256x256"),
        ("dall-e-2", "512x512"),
        ("dall-e-2", "1024x1024"),
        ("dall-e-3", "1024x1024"),
        ("dall-e-3", "1792x1024"),
        ("dall-e-3", "1024x1792"),
    ],
)
def test_standard_size_accepted_by_model_is_sent(mocked: Any, model: str, size: str) -> None:
    """Each model's documented sizes go out unchanged."""
    sent = assert_sent(mocked, model=model, size=size)
    assert sent["size"] == size


@pytest.mark.parametrize(
    "model, size",
    [
        (model, size)
        for model in FIXED_SIZE_GPT_MODELS
        for size in ("256x256", "512x512", "1792x1024", "1024x1792", "1536x864", "2048x2048")
    ]
    + [
        ("dall-e-2", "auto"),
        ("dall-e-2", "1536x1024"),
        ("dall-e-2", "1792x1024"),
        ("dall-e-2", "2048x2048"),
        ("dall-e-3", "auto"),
        ("dall-e-3", "256x256"),
        ("dall-e-3", "512x512"),
        ("dall-e-3", "1536x1024"),
        ("dall-e-3", "1024x1536"),
    ],
)
def test_size_not_accepted_by_model_is_rejected(mocked: Any, model: str, size: str) -> None:
    """Sizes outside a fixed-size model's list (including 'auto' for DALL-E) are refused."""
    error = assert_rejected(mocked, "size", "must be one of", model=model, size=size)
    assert model in str(error)


# -- gpt-image-2 free WIDTHxHEIGHT sizes ------------------------------------------


@pytest.mark.parametrize(
    "model, size",
    [
        ("gpt-image-2", "1536x864"),
        ("gpt-image-2", "2880x2880"),  # exactly 8,294,400 pixels, the maximum
        ("gpt-image-2", "3840x2160"),  # the maximum resolution
        ("gpt-image-2", "2160x3840"),
        ("gpt-image-2", "1024x640"),  # exactly 655,360 pixels, the minimum
        ("gpt-image-2", "3072x1024"),  # exactly 3:1
        ("gpt-image-2", "1024x3072"),  # exactly 1:3
        ("gpt-image-2", "2560x1440"),
        ("gpt-image-2-2026-04-21", "1536x864"),
        ("gpt-image-2-2026-04-21", "3840x2160"),
    ],
)
def test_gpt_image_2_free_size_within_limits_is_sent(mocked: Any, model: str, size: str) -> None:
    """WIDTHxHEIGHT sizes within gpt-image-2's limits go out unchanged."""
    sent = assert_sent(mocked, model=model, size=size)
    assert sent["size"] == size


@pytest.mark.parametrize(
    "size, fragment",
    [
        ("1000x1000", "multiples of 16"),
        ("1024x1000", "multiples of 16"),
        ("0x1024", "multiples of 16"),
        ("3072x1008", "aspect ratio"),  # 3072 / 1008 = 3.05, just over 3:1
        ("1008x3072", "aspect ratio"),
        ("3840x1024", "aspect ratio"),  # 3.75:1
        ("4096x2048", "3840"),  # longest edge over 3840
        ("2048x4096", "3840"),
        ("512x512", "pixels"),  # 262,144 < 655,360
        ("1008x640", "pixels"),  # 645,120 < 655,360
        ("2896x2896", "pixels"),  # 8,386,816 > 8,294,400
        ("3840x2176", "pixels"),  # 8,355,840 > 8,294,400
        ("big", "WIDTHxHEIGHT"),
        ("1024X1024", "WIDTHxHEIGHT"),
        ("1024 x 1024", "WIDTHxHEIGHT"),
        (" 1536x864", "WIDTHxHEIGHT"),
        ("1536x864 ", "WIDTHxHEIGHT"),
        ("1536x864\n", "WIDTHxHEIGHT"),
        ("-1024x1024", "WIDTHxHEIGHT"),
        ("1536x864x2", "WIDTHxHEIGHT"),
    ],
)
def test_gpt_image_2_free_size_outside_limits_is_rejected(mocked: Any, size: str, fragment: str) -> None:
    """gpt-image-2 sizes must be multiples of 16, 1:3 to 3:1, edge <= 3840, 655,360-8,294,400 pixels."""
    assert_rejected(mocked, "size", fragment, model="gpt-image-2", size=size)


def test_gpt_image_2_size_with_absurdly_long_number_is_rejected(mocked: Any) -> None:
    """A size with thousands of digits is refused as a RequestValidationError, not a raw ValueError."""
    assert_rejected(mocked, "size", "size", model="gpt-image-2", size="1" * 5000 + "x16")


# -- parameters per model family -------------------------------------------------


GPT_ONLY_ARGUMENTS = [
    ("output_format", "png"),
    ("output_compression", 50),
    ("background", "opaque"),
    ("background", "transparent"),
    ("moderation", "low"),
]


@pytest.mark.parametrize("model", DALLE_MODELS)
@pytest.mark.parametrize("param, value", GPT_ONLY_ARGUMENTS)
def test_gpt_only_parameter_rejected_for_dalle(mocked: Any, model: str, param: str, value: Any) -> None:
    """output_format, output_compression, background and moderation are GPT-image-only."""
    error = assert_rejected(mocked, param, "not supported by " + model, model=model, **{param: value})
    assert "gpt-image-2" in str(error)


@pytest.mark.parametrize("model", DALLE_MODELS)
@pytest.mark.parametrize("param, value", [("moderation", "low"), ("partial_images", 1), ("quality", "ultra")])
def test_extra_body_fields_are_type_checked_never_value_checked(
    mocked: Any, model: str, param: str, value: Any
) -> None:
    """extra_body may set any field, even one the rules would refuse as a keyword: it is sent as given."""
    sent = assert_sent(mocked, model=model, extra_body={param: value})
    assert sent[param] == value


@pytest.mark.parametrize("param, value", [("stream", "yes"), ("partial_images", 1.5), ("quality", 3)])
def test_extra_body_fields_the_schema_knows_are_type_checked(mocked: Any, param: str, value: Any) -> None:
    """A known field of the wrong type is refused, wherever it comes from."""
    assert_rejected(mocked, param, "must be of type", model="gpt-image-2", extra_body={param: value})


@pytest.mark.parametrize("model", GPT_IMAGE_MODELS)
@pytest.mark.parametrize(
    "param, value",
    [
        ("response_format", "b64_json"),
        ("response_format", "url"),
        ("style", "vivid"),
        ("style", "natural"),
    ],
)
def test_dalle_only_parameter_rejected_for_gpt_image_models(mocked: Any, model: str, param: str, value: Any) -> None:
    """response_format and style are DALL-E-only (the API answers 400 unknown_parameter)."""
    error = assert_rejected(mocked, param, "not supported by " + model, model=model, **{param: value})
    assert "dall-e-3" in str(error)


@pytest.mark.parametrize("value", ["vivid", "natural"])
def test_style_rejected_for_dalle_2(mocked: Any, value: str) -> None:
    """style belongs to dall-e-3 alone."""
    assert_rejected(mocked, "style", "not supported by dall-e-2", model="dall-e-2", style=value)


@pytest.mark.parametrize(
    "model, param, value",
    [
        ("dall-e-2", "response_format", "url"),
        ("dall-e-2", "response_format", "b64_json"),
        ("dall-e-3", "response_format", "b64_json"),
        ("dall-e-3", "style", "natural"),
        ("dall-e-3", "style", "vivid"),
        ("gpt-image-2", "output_format", "webp"),
        ("gpt-image-2", "background", "opaque"),
        ("gpt-image-2", "moderation", "low"),
        ("gpt-image-1", "moderation", "auto"),
        ("gpt-image-1-mini", "output_format", "jpeg"),
    ],
)
def test_parameter_accepted_by_model_is_sent(mocked: Any, model: str, param: str, value: Any) -> None:
    """A model-specific parameter sent to a model that accepts it goes out."""
    sent = assert_sent(mocked, model=model, **{param: value})
    assert sent[param] == value


# -- quality ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, quality",
    [
        ("gpt-image-2", "hd"),
        ("gpt-image-2", "standard"),
        ("gpt-image-1", "hd"),
        ("gpt-image-1.5", "standard"),
        ("dall-e-3", "low"),
        ("dall-e-3", "medium"),
        ("dall-e-3", "high"),
        ("dall-e-2", "hd"),
        ("dall-e-2", "low"),
        ("dall-e-2", "high"),
    ],
)
def test_quality_not_accepted_by_model_is_rejected(mocked: Any, model: str, quality: str) -> None:
    """GPT image models take low/medium/high/auto, dall-e-3 standard/hd, dall-e-2 standard."""
    error = assert_rejected(mocked, "quality", "must be one of", model=model, quality=quality)
    assert model in str(error)


@pytest.mark.parametrize(
    "model, quality",
    [
        ("gpt-image-2", "low"),
        ("gpt-image-2", "medium"),
        ("gpt-image-2", "high"),
        ("gpt-image-2", "auto"),
        ("gpt-image-1-mini", "low"),
        ("dall-e-3", "standard"),
        ("dall-e-3", "hd"),
        ("dall-e-2", "standard"),
    ],
)
def test_quality_accepted_by_model_is_sent(mocked: Any, model: str, quality: str) -> None:
    """A quality the model accepts goes out unchanged."""
    sent = assert_sent(mocked, model=model, quality=quality)
    assert sent["quality"] == quality


# -- combinations: background and output_compression vs output_format -----------------


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1"])
def test_transparent_background_with_jpeg_is_rejected(mocked: Any, model: str) -> None:
    """A JPEG cannot be transparent; the error names background."""
    assert_rejected(
        mocked,
        "background",
        "'transparent' is not possible with output_format 'jpeg'",
        model=model,
        background="transparent",
        output_format="jpeg",
    )


@pytest.mark.parametrize(
    "background, output_format",
    [
        ("transparent", "png"),
        ("transparent", "webp"),
        ("transparent", None),  # the API's default output format is png
        ("opaque", "jpeg"),
        ("auto", "jpeg"),
    ],
)
def test_background_with_compatible_output_format_is_sent(mocked: Any, background: str, output_format: Any) -> None:
    """Transparency with png or webp (or the default png) is fine; opaque with jpeg too."""
    sent = assert_sent(mocked, model="gpt-image-2", background=background, output_format=output_format)
    assert sent["background"] == background
    assert sent.get("output_format") == output_format


@pytest.mark.parametrize("output_format", ["png", None])
def test_output_compression_without_jpeg_or_webp_is_rejected(mocked: Any, output_format: Any) -> None:
    """output_compression applies to jpeg and webp only (png is the default)."""
    assert_rejected(
        mocked,
        "output_compression",
        "does not apply with output_format 'png'",
        model="gpt-image-2",
        output_compression=50,
        output_format=output_format,
    )


@pytest.mark.parametrize(
    "output_format, compression",
    [
        ("jpeg", 50),
        ("webp", 50),
        ("jpeg", 0),
        ("webp", 100),
    ],
)
def test_output_compression_with_jpeg_or_webp_is_sent(mocked: Any, output_format: str, compression: int) -> None:
    """output_compression 0-100 with jpeg or webp goes out."""
    sent = assert_sent(mocked, model="gpt-image-2", output_format=output_format, output_compression=compression)
    assert sent["output_compression"] == compression
    assert sent["output_format"] == output_format


@pytest.mark.parametrize("compression, fragment", [(101, "at most 100"), (-1, "at least 0")])
def test_output_compression_out_of_range_is_refused(mocked: Any, compression: int, fragment: str) -> None:
    """output_compression must be 0-100 whatever the format."""
    assert_rejected(
        mocked,
        "output_compression",
        fragment,
        model="gpt-image-2",
        output_format="jpeg",
        output_compression=compression,
    )


def test_partial_images_without_stream_is_rejected() -> None:
    """partial_images only makes sense when streaming (a rule for batch items and other keyword sources)."""
    from imageprovider import _rules
    from imageprovider.model_specs import MODEL_SPECS

    with pytest.raises(RequestValidationError) as excinfo:
        _rules.check_params({"prompt": "x", "partial_images": 2}, MODEL_SPECS["gpt-image-2"])
    assert excinfo.value.param == "partial_images"
    assert "streaming" in str(excinfo.value)


# -- models the table does not know; turning the rules off -------------------------


def test_unknown_model_gets_schema_checks_only(mocked: Any) -> None:
    """A compatible server's model is not held to OpenAI's per-model rules."""
    sent = assert_sent(
        mocked,
        model="my-compatible-model",
        size="999x1",
        n=10,
        style="vivid",
        output_format="png",
        output_compression=5,
    )
    assert sent["model"] == "my-compatible-model"
    assert sent["size"] == "999x1"
    assert sent["style"] == "vivid"
    assert sent["output_compression"] == 5


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"n": 0}, "n"),
        ({"n": "2"}, "n"),
        ({"quality": 5}, "quality"),
        ({"size": ""}, "size"),
        ({"output_compression": 101}, "output_compression"),
    ],
)
def test_unknown_model_still_gets_schema_checks(mocked: Any, kwargs: Dict[str, Any], param: str) -> None:
    """The JSON Schema (shape and types) applies to every model, known or not."""
    assert_rejected(mocked, param, param, model="my-compatible-model", **kwargs)


@pytest.mark.parametrize("kwargs", [{"n": 11}, {"quality": "ultra"}, {"output_format": "avif"}, {"size": "999x1"}])
def test_unknown_model_is_not_held_to_any_value_list(mocked: Any, kwargs: Dict[str, Any]) -> None:
    """Value lists and limits live in the model table only: a model it does not know gets none of them."""
    sent = assert_sent(mocked, model="my-compatible-model", **kwargs)
    assert {key: sent[key] for key in kwargs} == kwargs


def test_check_model_rules_false_lets_dalle_3_n_2_through(mocked: Any) -> None:
    """With check_model_rules=False only the schema is applied, so dall-e-3 n=2 is sent."""
    sent = assert_sent(mocked, model="dall-e-3", n=2, provider_options={"check_model_rules": False})
    assert sent == {"prompt": "A lighthouse", "model": "dall-e-3", "n": 2}


@pytest.mark.parametrize("kwargs", [{"quality": "ultra"}, {"n": 99}, {"output_format": "avif"}, {"style": "x"}])
def test_check_model_rules_false_lets_any_well_typed_value_through(mocked: Any, kwargs: Dict[str, Any]) -> None:
    """With the rules off, gpt-image-2 is sent any value of the right type."""
    sent = assert_sent(mocked, model="gpt-image-2", provider_options={"check_model_rules": False}, **kwargs)
    assert {key: sent[key] for key in kwargs} == kwargs


def test_check_model_rules_false_still_applies_schema(mocked: Any) -> None:
    """Turning the model rules off does not turn the schema off."""
    assert_rejected(mocked, "n", "at least 1", model="dall-e-3", n=0, provider_options={"check_model_rules": False})
