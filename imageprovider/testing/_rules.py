"""
imageprovider.testing._rules
~~~~~~~~~~~~~~~~~~~~~~~~~~~~

The stand-in server's own table of OpenAI image API rules (as of 2026-12-03),
written from the facts file (api-facts §1, §1.5, §9, §10) and kept apart from
the client's model table and checks on purpose: the stand-in is an
independent oracle, so a validation bug in the client is not repeated here.

What it holds:

* :data:`MODELS`: every image model id the stand-in knows, with its family's
  rules and its shutdown date. A request naming a model on or after that date
  is answered ``404 model_not_found``. Model ids not in the table (compatible
  servers) get the shape checks and the API-wide rules only.
* :func:`check_body`: the request body against its JSON Schema (shape and
  types), then the model's rules (endpoints, parameters, values, prompt
  length, ``n``, sizes, GIF and SVG options).
* :func:`check_inputs`: input images, masks and markup overlays, read with
  the stand-in's own header reader (:mod:`._imagehead`).
* :func:`model_list`: the ``GET /v1/models`` body.

Every refusal is an :class:`APIError` carrying the status and the error object
the API would send. Where a fact is unknown (marked C or missing in the facts
file), the rule lets the request through.
"""

import datetime
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from .. import _schemas
from ._imagehead import ImageHead, read_head

__all__ = [
    "APIError",
    "MODELS",
    "ModelRule",
    "UploadedImage",
    "check_body",
    "check_inputs",
    "check_shape",
    "default_model",
    "find_model",
    "frame_sheet",
    "model_list",
    "model_object",
    "parse_size",
    "shutdown_error",
]

#: Request schema per form of request.
SCHEMAS = {
    "generations": "create_image_request",
    "edits": "create_image_edit_request",
    "edits-json": "edit_image_body_json_param",
    "variations": "create_image_variation_request",
}

# -- limits that hold whatever the model --------------------------------------------

#: Images in one edit (§1.2, §1.3).
MAX_INPUT_IMAGES = 16
#: ``n`` for every model (§1.1).
MAX_N = 10
#: Input image bytes for the GPT image models (§1.2) and for dall-e-2 and masks (§1.2, §1.4).
GPT_INPUT_MAX_BYTES = 50 * 1024 * 1024
SMALL_INPUT_MAX_BYTES = 4 * 1024 * 1024
#: Free ``WIDTHxHEIGHT`` sizes (§1.1, §9.2): multiples of 16, ratio at most 3:1, edge and pixel limits.
SIZE_MULTIPLE = 16
MAX_ASPECT_RATIO = 3
MAX_EDGE = 3840
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
#: GIF output (§9.2).
FRAME_COUNT_RANGE = (2, 16)
DEFAULT_FRAME_COUNT = 9
MIN_FRAME_DURATION_MS = 20
DEFAULT_FRAME_DURATION_MS = 200
#: ``partial_images`` (§3).
MAX_PARTIAL_IMAGES = 3

_SIZE_PATTERN = re.compile(r"([0-9]{1,5})x([0-9]{1,5})\Z")
_INPUT_MIME_TYPES = ("image/jpeg", "image/png", "image/webp")


class APIError(Exception):
    """A request the API refuses: the status and the error object it would answer with."""

    def __init__(
        self,
        message: str,
        param: Optional[str] = None,
        code: Optional[str] = "invalid_value",
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.type = type

    def body(self) -> Dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# -- the model table --------------------------------------------------------------------

_STILL = frozenset({"output_format", "output_compression", "background", "moderation", "stream", "partial_images"})
_GPT_VALUES: Dict[str, FrozenSet[str]] = {
    "quality": frozenset({"low", "medium", "high", "auto"}),
    "output_format": frozenset({"png", "jpeg", "webp"}),
    "background": frozenset({"transparent", "opaque", "auto"}),
    "moderation": frozenset({"low", "auto"}),
    "input_fidelity": frozenset({"high", "low"}),
}
_GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})


@dataclass(frozen=True)
class ModelRule:
    """What one model id accepts."""

    id: str
    #: ``dall-e-2``, ``dall-e-3``, ``gpt-image-1``, ``gpt-image-2``, ``gpt-image-2.5`` or ``gpt-image-2.6``.
    family: str
    #: Unix time for ``GET /v1/models``.
    created: int
    endpoints: FrozenSet[str]
    #: Parameters taken per endpoint besides ``prompt``, ``model``, ``n``, ``size``, ``quality``, ``user``, ``safety_identifier``.
    params: Mapping[str, FrozenSet[str]]
    values: Mapping[str, FrozenSet[str]]
    sizes: FrozenSet[str]
    prompt_max: int = 32000
    max_n: int = MAX_N
    #: Whether any ``WIDTHxHEIGHT`` within the limits is taken (gpt-image-2 and later).
    custom_sizes: bool = False
    #: Whether edits may use the JSON body.
    json_edits: bool = True
    #: Whether results are URLs unless ``response_format=b64_json`` (DALL-E).
    returns_url: bool = False
    shutdown: Optional[datetime.date] = None
    replacements: Tuple[str, ...] = ()

    def shut_down(self, today: datetime.date) -> bool:
        """Whether requests naming it are refused on ``today``."""
        return self.shutdown is not None and today >= self.shutdown


def _day(text: str) -> datetime.date:
    return datetime.date(*(int(part) for part in text.split("-")))


def _unix(text: str) -> int:
    day = _day(text)
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp())


def _gpt(
    model_id: str,
    family: str,
    released: str,
    *,
    shutdown: Optional[str] = None,
    replacements: Tuple[str, ...] = (),
    input_fidelity: bool = False,
    custom_sizes: bool = True,
    extra_values: Optional[Mapping[str, FrozenSet[str]]] = None,
    extra_params: Optional[Mapping[str, FrozenSet[str]]] = None,
) -> ModelRule:
    values = dict(_GPT_VALUES)
    for name, more in (extra_values or {}).items():
        values[name] = values.get(name, frozenset()) | more
    edits = _STILL | ({"input_fidelity"} if input_fidelity else set())
    params = {"generations": _STILL, "edits": frozenset(edits)}
    for endpoint, more in (extra_params or {}).items():
        params[endpoint] = params[endpoint] | more
    return ModelRule(
        id=model_id,
        family=family,
        created=_unix(released),
        endpoints=frozenset({"generations", "edits"}),
        params=params,
        values=values,
        sizes=_GPT_SIZES,
        custom_sizes=custom_sizes,
        shutdown=_day(shutdown) if shutdown else None,
        replacements=replacements,
    )


def _build_table() -> Dict[str, ModelRule]:
    table: List[ModelRule] = [
        # §1.1, §1.4, §1.5; shut down 2026-05-12 (§0.1, §9.1, A).
        ModelRule(
            id="dall-e-2",
            family="dall-e-2",
            created=_unix("2023-11-01"),
            endpoints=frozenset({"generations", "edits", "variations"}),
            params={
                "generations": frozenset({"response_format"}),
                "edits": frozenset({"response_format"}),
                "variations": frozenset({"response_format"}),
            },
            values={"quality": frozenset({"standard", "auto"}), "response_format": frozenset({"url", "b64_json"})},
            sizes=frozenset({"256x256", "512x512", "1024x1024"}),
            prompt_max=1000,
            json_edits=False,
            returns_url=True,
            shutdown=_day("2026-05-12"),
        ),
        ModelRule(
            id="dall-e-3",
            family="dall-e-3",
            created=_unix("2023-10-31"),
            endpoints=frozenset({"generations"}),
            params={"generations": frozenset({"response_format", "style"})},
            values={
                "quality": frozenset({"standard", "hd", "auto"}),
                "response_format": frozenset({"url", "b64_json"}),
                "style": frozenset({"vivid", "natural"}),
            },
            sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
            prompt_max=4000,
            max_n=1,
            json_edits=False,
            returns_url=True,
            shutdown=_day("2026-05-12"),
        ),
        # §1.1, §1.5, §0.11 (input_fidelity only on 1 and 1.5); shutdowns §9.1 (A).
        _gpt(
            "gpt-image-1",
            "gpt-image-1",
            "2025-04-23",
            shutdown="2026-10-23",
            replacements=("gpt-image-2.5-sunburst", "gpt-image-2.5-flare"),
            input_fidelity=True,
            custom_sizes=False,
        ),
    ]
    for model_id in ("gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini", "chatgpt-image-latest"):
        table.append(
            _gpt(
                model_id,
                "gpt-image-1",
                "2025-10-06" if model_id == "gpt-image-1-mini" else "2025-12-16",
                shutdown="2026-12-01",
                replacements=("gpt-image-2.6-sunburst", "gpt-image-2.6-flare"),
                input_fidelity=model_id.startswith("gpt-image-1.5"),
                custom_sizes=False,
            )
        )
    # §1.1 custom sizes; gpt-image-2 refuses input_fidelity (§0.11).
    for model_id in ("gpt-image-2", "gpt-image-2-2026-04-21"):
        table.append(_gpt(model_id, "gpt-image-2", "2026-04-21"))
    # §9.1, §9.2: xhigh and max; input_fidelity unknown, so let through.
    for variant in ("flare", "sunburst"):
        for suffix in ("", "-2026-09-08"):
            table.append(
                _gpt(
                    f"gpt-image-2.5-{variant}{suffix}",
                    "gpt-image-2.5",
                    "2026-09-08",
                    input_fidelity=True,
                    extra_values={"quality": frozenset({"xhigh", "max"})},
                )
            )
        # §9.2: gif and svg output, complexity, frames, svg options, markup on JSON edits.
        table.append(
            _gpt(
                f"gpt-image-2.6-{variant}",
                "gpt-image-2.6",
                "2026-11-04",
                input_fidelity=True,
                extra_values={
                    "quality": frozenset({"xhigh", "max"}),
                    "output_format": frozenset({"gif", "svg"}),
                    "complexity": frozenset({"low", "medium", "high"}),
                },
                extra_params={
                    "generations": frozenset({"complexity", "frame_count", "frame_duration_ms", "svg"}),
                    "edits": frozenset({"complexity", "frame_count", "frame_duration_ms", "markup"}),
                },
            )
        )
    return {rule.id: rule for rule in table}


#: Every image model the stand-in knows, by id.
MODELS: Dict[str, ModelRule] = _build_table()

#: Models that are not image models, listed by ``GET /v1/models`` so clients can be tested on filtering.
OTHER_MODELS: Dict[str, int] = {"gpt-5": _unix("2025-08-07"), "text-embedding-3-small": _unix("2024-01-22")}

_COMMON_PARAMS = {
    "generations": frozenset({"prompt", "model", "n", "size", "quality", "user", "safety_identifier"}),
    "edits": frozenset({"prompt", "model", "n", "size", "quality", "user", "safety_identifier", "images", "mask"}),
    "variations": frozenset({"model", "n", "size", "user", "safety_identifier"}),
}
#: Parameters that only the GPT image models take: naming one makes dall-e-2's default give way (§0.1).
_GPT_ONLY = ("output_format", "output_compression", "background", "moderation", "stream", "partial_images")
_ENDPOINT_NAMES = {"generations": "image generations", "edits": "image edits", "variations": "image variations"}


def default_model(endpoint: str, body: Mapping[str, Any]) -> str:
    """The model the API uses when none is sent (§0.1, §1.2, §1.4)."""
    if endpoint == "edits":
        return "gpt-image-1.5"
    if endpoint == "generations" and any(body.get(name) is not None for name in _GPT_ONLY):
        return "gpt-image-1.5"
    return "dall-e-2"


def shutdown_error(rule: ModelRule, param: Optional[str] = "model") -> APIError:
    """The ``404 model_not_found`` answer for a model that has been shut down."""
    day = rule.shutdown.isoformat() if rule.shutdown is not None else "its shutdown date"
    instead = " Use {} instead.".format(" or ".join(rule.replacements)) if rule.replacements else ""
    return APIError(
        f"The model `{rule.id}` has been shut down on {day} and is no longer available.{instead}",
        param,
        "model_not_found",
        status=404,
    )


def model_list(today: datetime.date) -> Dict[str, Any]:
    """The ``GET /v1/models`` body: models not shut down on ``today``, with ``shutdown_date`` where one is announced."""
    return {"object": "list", "data": [model_object(model_id) for model_id in _listed(today)]}


def model_object(model_id: str) -> Dict[str, Any]:
    """One model object of ``GET /v1/models``."""
    rule = MODELS.get(model_id)
    created = rule.created if rule is not None else OTHER_MODELS[model_id]
    item: Dict[str, Any] = {"id": model_id, "object": "model", "created": created, "owned_by": "system"}
    if rule is not None and rule.shutdown is not None:
        item["shutdown_date"] = rule.shutdown.isoformat()
    return item


def find_model(model_id: str, today: datetime.date) -> Dict[str, Any]:
    """``GET /v1/models/{id}``.

    :raises APIError: 404 ``model_not_found`` for an unknown or shut-down model.
    """
    rule = MODELS.get(model_id)
    if rule is not None and rule.shut_down(today):
        raise shutdown_error(rule, None)
    if rule is None and model_id not in OTHER_MODELS:
        raise APIError(
            f"The model `{model_id}` does not exist or you do not have access to it.", None, "model_not_found", 404
        )
    return model_object(model_id)


def _listed(today: datetime.date) -> List[str]:
    image_models = [model_id for model_id, rule in MODELS.items() if not rule.shut_down(today)]
    return sorted(image_models + list(OTHER_MODELS))


# -- the body -------------------------------------------------------------------------------


_validators: Dict[str, Any] = {}
_validators_lock = threading.Lock()


def _validator(name: str) -> Any:
    with _validators_lock:
        validator = _validators.get(name)
        if validator is None:
            from jsonschema import Draft7Validator

            validator = _validators[name] = Draft7Validator(_schemas.load_schema(name))
        return validator


def _path_text(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def check_shape(form: str, body: Mapping[str, Any]) -> None:
    """Check ``body`` against the JSON Schema of its form (``generations``, ``edits``, ``edits-json``, ``variations``).

    :raises APIError: worded as the API words its own shape errors.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validator(SCHEMAS[form]).iter_errors(dict(body)))
    if error is None:
        return
    path = list(error.absolute_path)
    keyword = error.validator
    expected: Any = error.validator_value
    instance: Any = error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = [key for key in expected if key not in instance]
        name = _path_text(path + missing[:1])
        raise APIError(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(str(key) for key in instance if key not in known)
        name = _path_text(path + extra[:1])
        raise APIError(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    param = _path_text(path) or None
    name = param or "body"
    if keyword == "type":
        wanted = [kind for kind in (expected if isinstance(expected, list) else [expected]) if kind != "null"]
        words = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in wanted)
        got = _TYPE_WORDS[_json_type(instance)]
        raise APIError(f"Invalid type for '{name}': expected {words}, but got {got} instead.", param, "invalid_type")
    if keyword == "minimum":
        raise APIError(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {expected}, but got {instance} instead.",
            param,
            "integer_below_min_value",
        )
    if keyword == "maximum":
        raise APIError(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {expected}, but got {instance} instead.",
            param,
            "integer_above_max_value",
        )
    if keyword == "minLength":
        raise APIError(
            f"Invalid '{name}': empty string. Expected a string with minimum length {expected}, but got an empty string instead.",
            param,
            "empty_string",
        )
    if keyword == "maxLength":
        raise APIError(
            f"Invalid '{name}': string too long. Expected a string with maximum length {expected}, "
            f"but got a string with length {len(instance)} instead.",
            param,
            "string_above_max_length",
        )
    if keyword == "minItems":
        raise APIError(
            f"Invalid '{name}': empty array. Expected an array with minimum length {expected}, but got an empty array instead.",
            param,
            "empty_array",
        )
    if keyword == "maxItems":
        raise APIError(
            f"Invalid '{name}': array too long. Expected an array with maximum length {expected}, "
            f"but got an array with length {len(instance)} instead.",
            param,
            "array_above_max_length",
        )
    if keyword in ("oneOf", "anyOf") and isinstance(instance, dict):
        raise APIError(f"Invalid '{name}': give exactly one of 'image_url' or 'file_id'.", param)
    raise APIError(f"Invalid '{name}': {str(error.message)[:200]}", param)


def parse_size(size: Any) -> Optional[Tuple[int, int]]:
    """``"1536x864"`` -> ``(1536, 864)``; ``None`` when ``size`` is not ``WIDTHxHEIGHT``."""
    match = _SIZE_PATTERN.match(size) if isinstance(size, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def frame_sheet(width: int, height: int, frame_count: int) -> Tuple[int, int]:
    """The sheet the frames of a GIF are tiled on: a square grid of ``ceil(sqrt(frame_count))`` a side (§9.2, C)."""
    side = math.isqrt(frame_count - 1) + 1 if frame_count > 1 else 1
    return side * width, side * height


def _values_text(values: FrozenSet[str]) -> str:
    ordered = sorted(values)
    quoted = [f"'{value}'" for value in ordered]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _invalid_value(param: str, value: Any, allowed: FrozenSet[str]) -> APIError:
    return APIError(f"Invalid value: '{value}'. Supported values are: {_values_text(allowed)}.", param)


def _check_free_size(width: int, height: int, what: str, size: str, check_pixels: bool = True) -> None:
    if width == 0 or height == 0 or width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        raise APIError(f"Invalid size '{size}': {what} width and height must be multiples of {SIZE_MULTIPLE}.", "size")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise APIError(
            f"Invalid size '{size}': the aspect ratio of {what} must be between 1:{MAX_ASPECT_RATIO} and {MAX_ASPECT_RATIO}:1.",
            "size",
        )
    if check_pixels:
        _check_limits(width, height, f"Invalid size '{size}'", what)


def _check_limits(width: int, height: int, prefix: str, what: str) -> None:
    if max(width, height) > MAX_EDGE:
        raise APIError(f"{prefix}: the longest edge of {what} must be at most {MAX_EDGE} pixels.", "size")
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        raise APIError(
            f"{prefix}: {what} must have between {MIN_PIXELS:,} and {MAX_PIXELS:,} pixels, not {width * height:,}.",
            "size",
        )


def _given(body: Mapping[str, Any], name: str) -> bool:
    return body.get(name) is not None


def check_body(
    endpoint: str,
    form: str,
    body: Mapping[str, Any],
    today: datetime.date,
    *,
    shutdowns: bool = True,
) -> Optional[ModelRule]:
    """Check a request body (``model`` already filled in) and return its model's rules (``None`` if unknown).

    :param endpoint: ``generations``, ``edits`` or ``variations``.
    :param form: the body's form: the endpoint, or ``edits-json``.
    :param today: the stand-in's date, for shutdowns.
    :param shutdowns: refuse shut-down models (off on Azure paths, whose dates are Azure's own).
    :raises APIError: 404 ``model_not_found`` for a shut-down model; 400 for anything else.
    """
    model = body.get("model")
    rule = MODELS.get(model) if isinstance(model, str) else None
    if rule is not None and shutdowns and rule.shut_down(today):
        raise shutdown_error(rule)
    check_shape(form, body)
    n = body.get("n")
    if isinstance(n, int) and n > MAX_N:
        raise APIError(
            f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but got {n} instead.",
            "n",
            "integer_above_max_value",
        )
    if rule is None:
        return None
    _check_model(endpoint, form, body, rule)
    return rule


def _check_model(endpoint: str, form: str, body: Mapping[str, Any], rule: ModelRule) -> None:
    if endpoint not in rule.endpoints:
        raise APIError(f"The model `{rule.id}` does not support {_ENDPOINT_NAMES[endpoint]}.", "model")
    if form == "edits-json" and not rule.json_edits:
        raise APIError(f"The model `{rule.id}` takes edits as multipart/form-data only.", "model")
    accepted = _COMMON_PARAMS[endpoint] | rule.params.get(endpoint, frozenset())
    for name in sorted(body):
        if name in accepted or body[name] is None:
            continue
        if name == "input_fidelity":
            raise APIError(
                f"input_fidelity is not supported for model {rule.id}.",
                "input_fidelity",
                "invalid_input_fidelity_model",
            )
        raise APIError(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    prompt = body.get("prompt")
    if isinstance(prompt, str) and len(prompt) > rule.prompt_max:
        raise APIError(
            f"Invalid 'prompt': string too long. Expected a string with maximum length {rule.prompt_max}, "
            f"but got a string with length {len(prompt)} instead.",
            "prompt",
            "string_above_max_length",
        )
    n = body.get("n")
    if isinstance(n, int) and n > rule.max_n:
        raise APIError(
            f"Invalid 'n': integer above maximum value. Expected a value <= {rule.max_n}, but got {n} instead.",
            "n",
            "integer_above_max_value",
        )
    for name, allowed in sorted(rule.values.items()):
        value = body.get(name)
        if isinstance(value, str) and value not in allowed:
            raise _invalid_value(name, value, allowed)
    partial = body.get("partial_images")
    if isinstance(partial, int) and partial > MAX_PARTIAL_IMAGES:
        raise APIError(
            f"Invalid 'partial_images': integer above maximum value. Expected a value <= {MAX_PARTIAL_IMAGES}, "
            f"but got {partial} instead.",
            "partial_images",
            "integer_above_max_value",
        )
    output_format = body.get("output_format") or "png"
    _check_format(endpoint, body, rule, output_format)
    _check_size(body, rule, output_format)


def _check_format(endpoint: str, body: Mapping[str, Any], rule: ModelRule, output_format: str) -> None:
    if body.get("background") == "transparent" and output_format == "jpeg":
        raise APIError("Transparent backgrounds need output_format 'png' or 'webp' (jpeg has no alpha).", "background")
    if output_format != "gif":
        for name in ("frame_count", "frame_duration_ms"):
            if _given(body, name):
                raise APIError(f"'{name}' is only supported when output_format is 'gif'.", name)
    if output_format != "svg" and _given(body, "svg"):
        raise APIError("'svg' is only supported when output_format is 'svg'.", "svg")
    if output_format == "gif":
        if body.get("stream"):
            raise APIError("Streaming is not supported for GIF output.", "stream")
        if body.get("partial_images"):
            raise APIError("partial_images is not supported for GIF output.", "partial_images")
        if _given(body, "mask"):
            raise APIError("A mask is not supported for GIF output.", "mask")
        if _given(body, "output_compression"):
            raise APIError("output_compression is not supported for GIF output.", "output_compression")
        count = body.get("frame_count")
        low, high = FRAME_COUNT_RANGE
        if isinstance(count, int) and not low <= count <= high:
            above = count > high
            raise APIError(
                "Invalid 'frame_count': integer {} value. Expected a value {} {}, but got {} instead.".format(
                    "above maximum" if above else "below minimum",
                    "<=" if above else ">=",
                    high if above else low,
                    count,
                ),
                "frame_count",
                "integer_above_max_value" if above else "integer_below_min_value",
            )
        duration = body.get("frame_duration_ms")
        if isinstance(duration, int) and duration < MIN_FRAME_DURATION_MS:
            raise APIError(
                f"Invalid 'frame_duration_ms': integer below minimum value. Expected a value >= {MIN_FRAME_DURATION_MS}, "
                f"but got {duration} instead.",
                "frame_duration_ms",
                "integer_below_min_value",
            )
    if output_format == "svg":
        if endpoint != "generations":
            raise APIError("SVG output is only available for image generations.", "output_format")
        svg = body.get("svg")
        if not isinstance(svg, Mapping) or not svg.get("model"):
            raise APIError("SVG generation requires 'svg.model'.", "svg", "missing_required_parameter")
        n = body.get("n")
        if isinstance(n, int) and n != 1:
            raise APIError(
                f"Invalid 'n': SVG generation makes one image at a time. Expected a value <= 1, but got {n} instead.",
                "n",
                "integer_above_max_value",
            )


def _check_size(body: Mapping[str, Any], rule: ModelRule, output_format: str) -> None:
    size = body.get("size")
    if not isinstance(size, str):
        return
    gif = output_format == "gif"
    if size == "auto" and (gif or "auto" in rule.sizes):
        return  # the API picks (GIF frames of 1024x1024)
    if gif:
        parsed = parse_size(size)
        if parsed is None:
            raise APIError(f"Invalid size '{size}': expected WIDTHxHEIGHT or 'auto'.", "size")
        width, height = parsed
        _check_free_size(width, height, "one frame", size, check_pixels=False)
        count = body.get("frame_count")
        frames = count if isinstance(count, int) else DEFAULT_FRAME_COUNT
        sheet = frame_sheet(width, height, frames)
        _check_limits(
            sheet[0],
            sheet[1],
            f"Invalid size '{size}' for {frames} frames",
            f"the {sheet[0]}x{sheet[1]} sheet the frames are tiled on",
        )
        return
    if size in rule.sizes:
        return
    parsed = parse_size(size) if rule.custom_sizes else None
    if parsed is None:
        raise _invalid_value("size", size, rule.sizes)
    _check_free_size(parsed[0], parsed[1], "the image", size)


# -- input images ------------------------------------------------------------------------------


@dataclass
class UploadedImage:
    """An input image as it arrived: a multipart file part, or the bytes behind an image reference."""

    data: bytes
    #: The part's ``Content-Type``; ``None`` for references (data URLs and file ids).
    content_type: Optional[str] = None
    #: What the header says, once read.
    head: Optional[ImageHead] = field(default=None)


def _label(param: str, index: Optional[int]) -> str:
    return param if index is None else f"{param}[{index}]"


def _read(image: UploadedImage, param: str, index: Optional[int], allowed: Sequence[str]) -> ImageHead:
    label = _label(param, index)
    declared = image.content_type
    if declared is not None:
        declared = declared.split(";")[0].strip().lower().replace("image/jpg", "image/jpeg")
        if declared not in allowed:
            supported = ", ".join(f"'{kind}'" for kind in allowed[:-1])
            supported = f"{supported}, and '{allowed[-1]}'" if supported else f"'{allowed[-1]}'"
            raise APIError(
                f"Invalid file '{label}': unsupported mimetype ('{declared}'). Supported file formats are {supported}.",
                param,
            )
    head = read_head(image.data)
    if head is None:
        raise APIError(
            f"Invalid image file for '{label}': its bytes are not a valid PNG, JPEG or WEBP image.",
            param,
            "invalid_image_format",
        )
    if declared is not None and head.mime_type != declared:
        raise APIError(
            f"Invalid file '{label}': it is sent as {declared} but its bytes are {head.mime_type}.",
            param,
            "invalid_image_format",
        )
    if head.mime_type not in allowed:
        raise APIError(
            f"Invalid file '{label}': {head.mime_type} is not supported here.", param, "invalid_image_format"
        )
    image.head = head
    return head


def check_inputs(
    rule: Optional[ModelRule],
    param: str,
    images: Sequence[Optional[UploadedImage]],
    mask: Optional[UploadedImage] = None,
    markup: Optional[UploadedImage] = None,
    output_format: Any = "png",
) -> List[Optional[ImageHead]]:
    """Check the input images of an edit or variation, its mask and its markup overlay.

    ``None`` stands for an image the stand-in cannot see (a remote ``image_url``):
    it is counted, not read. The count and the mask and overlay rules hold for
    every model; formats, byte sizes and squareness come from ``rule``.

    :param param: ``image`` (multipart) or ``images`` (JSON references).
    :param output_format: the request's; a GIF takes no mask (a multipart mask is a file, not a body field).
    :returns: the headers of ``images``, ``None`` where unseen.
    :raises APIError: 400 naming ``param``, ``mask`` or ``markup``.
    """
    if not images:
        raise APIError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if mask is not None and output_format == "gif":
        raise APIError("A mask is not supported for GIF output.", "mask")
    dall_e = rule is not None and rule.family == "dall-e-2"
    limit = 1 if dall_e else MAX_INPUT_IMAGES
    if len(images) > limit:
        raise APIError(
            f"Invalid '{param}': {len(images)} images given; {rule.id if dall_e and rule else 'the API'} takes at most {limit}.",
            param,
        )
    heads: List[Optional[ImageHead]] = []
    several = len(images) > 1 or param == "images"
    allowed = ("image/png",) if dall_e else _INPUT_MIME_TYPES
    for index, image in enumerate(images):
        if image is None:
            heads.append(None)
            continue
        position = index if several else None
        head = _read(image, param, position, allowed)
        if rule is not None:
            most = SMALL_INPUT_MAX_BYTES if dall_e else GPT_INPUT_MAX_BYTES
            if len(image.data) > most:
                raise APIError(
                    f"Invalid '{_label(param, position)}': the image is {len(image.data):,} bytes; "
                    f"{rule.id} takes images of at most {most:,} bytes.",
                    param,
                )
            if dall_e and head.width != head.height:
                raise APIError(
                    f"Invalid '{_label(param, position)}': {rule.id} takes square images, not {head.width}x{head.height}.",
                    param,
                )
        heads.append(head)
    first = heads[0]
    for name, overlay in (("mask", mask), ("markup", markup)):
        if overlay is not None:
            _check_overlay(name, overlay, first)
    return heads


def _check_overlay(param: str, overlay: UploadedImage, first: Optional[ImageHead]) -> None:
    """A mask or markup: a PNG with an alpha channel, the size of the first image."""
    head = _read(overlay, param, None, ("image/png",))
    if param == "mask" and len(overlay.data) > SMALL_INPUT_MAX_BYTES:
        raise APIError(
            f"Invalid 'mask': the mask is {len(overlay.data):,} bytes; the maximum is {SMALL_INPUT_MAX_BYTES:,}.", param
        )
    if not head.has_alpha:
        raise APIError(f"Invalid '{param}': it must be a PNG with an alpha channel.", param)
    if first is not None and (head.width, head.height) != (first.width, first.height):
        raise APIError(
            f"Invalid '{param}': it is {head.width}x{head.height} but the first image is {first.width}x{first.height}; "
            "they must be the same size.",
            param,
        )
