"""
imageprovider._rules
~~~~~~~~~~~~~~~~~~~~

Per-model request rules that a JSON Schema cannot express: prompt length per
model, ``n`` range, sizes (including free ``WIDTHxHEIGHT`` sizes), which
parameters a model accepts, and combinations of parameters. The facts come
from :mod:`imageprovider.model_specs`; this module only applies them.
"""

import re
from typing import Any, FrozenSet, Mapping, Optional, Tuple

from .exceptions import RequestValidationError
from .model_specs import MODEL_SPECS, CustomSizeRule, ModelSpec

# \Z, not $: "$" would accept a trailing newline. Five digits bound int() work.
_SIZE_PATTERN = re.compile(r"([0-9]{1,5})x([0-9]{1,5})\Z")
_TRANSPARENT_FORMATS = ("png", "webp")
_COMPRESSIBLE_FORMATS = ("jpeg", "webp")
#: What the API uses when ``output_format`` is not sent.
_DEFAULT_OUTPUT_FORMAT = "png"


def _fail(param: str, message: str) -> RequestValidationError:
    return RequestValidationError("Parameter {!r} {}".format(param, message), param=param)


def _models_accepting(param: str) -> str:
    names = sorted(spec.name for spec in MODEL_SPECS.values() if param in spec.accepted_params)
    return ", ".join(names) if names else "no known model"


def parse_size(size: str) -> Optional[Tuple[int, int]]:
    """``"1536x864"`` -> ``(1536, 864)``; ``None`` when ``size`` is not ``WIDTHxHEIGHT``."""
    match = _SIZE_PATTERN.match(size)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _check_custom_size(size: str, rule: CustomSizeRule, model: str) -> None:
    parsed = parse_size(size)
    if parsed is None:
        raise _fail("size", "must be 'auto', a standard size or WIDTHxHEIGHT for {}, not {!r}".format(model, size))
    width, height = parsed
    if width == 0 or height == 0 or width % rule.multiple or height % rule.multiple:
        raise _fail("size", "{!r}: width and height must be positive multiples of {}".format(size, rule.multiple))
    if max(width, height) > rule.max_aspect_ratio * min(width, height):
        raise _fail(
            "size", "{!r}: the aspect ratio must be between 1:{:g} and {:g}:1".format(
                size, rule.max_aspect_ratio, rule.max_aspect_ratio
            )
        )
    if max(width, height) > rule.max_edge:
        raise _fail("size", "{!r}: no edge may be longer than {} pixels".format(size, rule.max_edge))
    pixels = width * height
    if not rule.min_pixels <= pixels <= rule.max_pixels:
        raise _fail(
            "size", "{!r} has {:,} pixels; {} accepts {:,} to {:,}".format(
                size, pixels, model, rule.min_pixels, rule.max_pixels
            )
        )


def _check_size(size: str, spec: ModelSpec) -> None:
    if size in spec.sizes:
        return
    if spec.custom_size is not None:
        _check_custom_size(size, spec.custom_size, spec.name)
        return
    raise _fail("size", "must be one of {} for {}, not {!r}".format(", ".join(sorted(spec.sizes)), spec.name, size))


def check_generation(body: Mapping[str, Any], spec: ModelSpec) -> None:
    """Apply ``spec``'s rules to a ``/images/generations`` body that already passed its schema.

    :raises RequestValidationError: naming the parameter that breaks a rule.
    """
    for param in body:
        if param not in spec.accepted_params and param in _all_known_params():
            raise _fail(param, "is not supported by {}; it is accepted by {}".format(spec.name, _models_accepting(param)))
    prompt = body.get("prompt")
    if isinstance(prompt, str) and len(prompt) > spec.prompt_max_length:
        raise _fail("prompt", "is {:,} characters long; {} accepts at most {:,}".format(
            len(prompt), spec.name, spec.prompt_max_length))
    n = body.get("n")
    if n is not None and n > spec.max_n:
        raise _fail("n", "must be at most {} for {}, not {}".format(spec.max_n, spec.name, n))
    if body.get("size") is not None:
        _check_size(body["size"], spec)
    quality = body.get("quality")
    if quality is not None and quality not in spec.qualities:
        raise _fail("quality", "must be one of {} for {}, not {!r}".format(
            ", ".join(sorted(spec.qualities)), spec.name, quality))
    _check_output_options(body)


def _check_output_options(body: Mapping[str, Any]) -> None:
    output_format = body.get("output_format") or _DEFAULT_OUTPUT_FORMAT
    if body.get("background") == "transparent" and output_format not in _TRANSPARENT_FORMATS:
        raise _fail("background", "'transparent' needs output_format 'png' or 'webp', not {!r}".format(output_format))
    if body.get("output_compression") is not None and output_format not in _COMPRESSIBLE_FORMATS:
        raise _fail("output_compression", "applies only to output_format 'jpeg' or 'webp' (output_format is {!r})".format(
            output_format))
    if body.get("partial_images") and not body.get("stream"):
        raise _fail("partial_images", "applies only to streaming requests")


def _all_known_params() -> FrozenSet[str]:
    known: FrozenSet[str] = frozenset()
    for spec in MODEL_SPECS.values():
        known |= spec.accepted_params
    return known
