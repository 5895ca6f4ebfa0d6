"""
imageprovider._rules
~~~~~~~~~~~~~~~~~~~~

Per-model request rules that a JSON Schema cannot express: which endpoints
and parameters a model accepts, prompt length, ``n``, sizes (including free
``WIDTHxHEIGHT`` sizes), combinations of parameters, and the input images of
edits and variations. The facts come from :mod:`imageprovider.model_specs`;
this module only applies them.
"""

import re
from typing import Any, FrozenSet, Mapping, Optional, Sequence, Tuple

from ._inputs import ImageFile
from ._schemas import format_path
from .exceptions import RequestValidationError
from .model_specs import COMMON_PARAMS, MASK_MAX_BYTES, MODEL_SPECS, CustomSizeRule, ModelSpec

# \Z, not $: "$" would accept a trailing newline. Five digits bound int() work.
_SIZE_PATTERN = re.compile(r"([0-9]{1,5})x([0-9]{1,5})\Z")
_TRANSPARENT_FORMATS = ("png", "webp")
_COMPRESSIBLE_FORMATS = ("jpeg", "webp")
#: What the API uses when ``output_format`` is not sent.
_DEFAULT_OUTPUT_FORMAT = "png"
#: The API's own ceiling on input images, whatever the model.
MAX_INPUT_IMAGES = 16


def _fail(param: str, message: str, path: Tuple[Any, ...] = ()) -> RequestValidationError:
    return RequestValidationError(
        f"Parameter {format_path(path) if path else param!r} {message}", param=param, path=path
    )


def _models_accepting(param: str, endpoint: str) -> str:
    names = sorted(spec.name for spec in MODEL_SPECS.values() if param in spec.accepted_params(endpoint))
    return ", ".join(names) if names else "no known model"


def known_params(endpoint: str) -> FrozenSet[str]:
    """Every parameter some known model accepts on ``endpoint``."""
    known: FrozenSet[str] = COMMON_PARAMS[endpoint]
    for spec in MODEL_SPECS.values():
        known |= spec.accepted_params(endpoint)
    return known


def parse_size(size: str) -> Optional[Tuple[int, int]]:
    """``"1536x864"`` -> ``(1536, 864)``; ``None`` when ``size`` is not ``WIDTHxHEIGHT``."""
    match = _SIZE_PATTERN.match(size)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _check_custom_size(size: str, rule: CustomSizeRule, model: str) -> None:
    parsed = parse_size(size)
    if parsed is None:
        raise _fail("size", f"must be 'auto', a standard size or WIDTHxHEIGHT for {model}, not {size!r}")
    width, height = parsed
    if width == 0 or height == 0 or width % rule.multiple or height % rule.multiple:
        raise _fail("size", f"{size!r}: width and height must be positive multiples of {rule.multiple}")
    if max(width, height) > rule.max_aspect_ratio * min(width, height):
        raise _fail(
            "size",
            f"{size!r}: the aspect ratio must be between 1:{rule.max_aspect_ratio:g} and {rule.max_aspect_ratio:g}:1",
        )
    if max(width, height) > rule.max_edge:
        raise _fail("size", f"{size!r}: no edge may be longer than {rule.max_edge} pixels")
    pixels = width * height
    if not rule.min_pixels <= pixels <= rule.max_pixels:
        raise _fail(
            "size", f"{size!r} has {pixels:,} pixels; {model} accepts {rule.min_pixels:,} to {rule.max_pixels:,}"
        )


def _check_size(size: str, spec: ModelSpec) -> None:
    if size in spec.sizes:
        return
    if spec.custom_size is not None:
        _check_custom_size(size, spec.custom_size, spec.name)
        return
    raise _fail("size", "must be one of {} for {}, not {!r}".format(", ".join(sorted(spec.sizes)), spec.name, size))


def check_params(body: Mapping[str, Any], spec: ModelSpec, endpoint: str = "generations") -> None:
    """Apply ``spec``'s rules to a body for ``endpoint`` that already passed its schema.

    :raises RequestValidationError: naming the parameter that breaks a rule.
    """
    if endpoint not in spec.endpoints:
        serving = sorted(other.name for other in MODEL_SPECS.values() if endpoint in other.endpoints)
        raise _fail(
            "model", "{!r} has no {} endpoint; models that do: {}".format(spec.name, endpoint, ", ".join(serving))
        )
    accepted = spec.accepted_params(endpoint)
    known = known_params(endpoint)
    for param in body:
        if param not in accepted and param in known:
            raise _fail(
                param,
                f"is not supported by {spec.name} for {endpoint}; it is accepted by {_models_accepting(param, endpoint)}",
            )
    prompt = body.get("prompt")
    if isinstance(prompt, str) and len(prompt) > spec.prompt_max_length:
        raise _fail(
            "prompt", f"is {len(prompt):,} characters long; {spec.name} accepts at most {spec.prompt_max_length:,}"
        )
    n = body.get("n")
    if n is not None and n > spec.max_n:
        raise _fail("n", f"must be at most {spec.max_n} for {spec.name}, not {n}")
    if body.get("size") is not None:
        _check_size(body["size"], spec)
    quality = body.get("quality")
    if isinstance(quality, str) and quality not in spec.qualities:
        raise _fail(
            "quality",
            "must be one of {} for {}, not {!r}".format(", ".join(sorted(spec.qualities)), spec.name, quality),
        )
    check_output_options(body)


def check_output_options(body: Mapping[str, Any]) -> None:
    """Rules between parameters, whatever the model."""
    output_format = body.get("output_format") or _DEFAULT_OUTPUT_FORMAT
    if body.get("background") == "transparent" and output_format not in _TRANSPARENT_FORMATS:
        raise _fail("background", f"'transparent' needs output_format 'png' or 'webp', not {output_format!r}")
    if body.get("output_compression") is not None and output_format not in _COMPRESSIBLE_FORMATS:
        raise _fail(
            "output_compression", f"applies only to output_format 'jpeg' or 'webp' (output_format is {output_format!r})"
        )
    if body.get("partial_images") and not body.get("stream"):
        raise _fail("partial_images", "applies only to streaming requests")


def check_inputs(
    param: str,
    images: Sequence[ImageFile],
    mask: Optional[ImageFile],
    spec: Optional[ModelSpec],
) -> None:
    """Check the input images of an edit or variation (and the mask) before they are uploaded.

    The count, the mask's format and its size match apply whatever the model;
    the formats, byte sizes and squareness come from ``spec`` when it is known.
    """
    if not images:
        raise _fail(param, "needs at least one image")
    limit = spec.inputs.max_images if spec is not None else MAX_INPUT_IMAGES
    if len(images) > limit:
        where = f"{spec.name} accepts" if spec is not None else "the API accepts"
        raise _fail(param, f"has {len(images)} images; {where} at most {limit}")
    for index, image in enumerate(images):
        path = (param, index) if len(images) > 1 or param == "images" else (param,)
        if spec is not None:
            _check_input_against(image, spec, param, path)
    if mask is not None:
        _check_mask(mask, images[0])


def _check_input_against(image: ImageFile, spec: ModelSpec, param: str, path: Tuple[Any, ...]) -> None:
    rule = spec.inputs
    if image.info.mime_type not in rule.formats:
        raise _fail(
            param,
            "({!r}) is {}; {} takes only {}".format(
                image.filename, image.info.mime_type, spec.name, ", ".join(sorted(rule.formats))
            ),
            path,
        )
    if len(image.data) > rule.max_bytes:
        raise _fail(
            param,
            f"({image.filename!r}) is {len(image.data):,} bytes; {spec.name} takes at most {rule.max_bytes:,}",
            path,
        )
    if rule.square and image.info.width != image.info.height:
        raise _fail(
            param,
            f"({image.filename!r}) is {image.info.width}x{image.info.height}; {spec.name} takes only square images",
            path,
        )


def _check_mask(mask: ImageFile, first: ImageFile) -> None:
    if mask.info.mime_type != "image/png" or not mask.info.has_alpha:
        raise _fail(
            "mask", f"({mask.filename!r}) must be a PNG with an alpha channel; transparent pixels mark the area to edit"
        )
    if len(mask.data) > MASK_MAX_BYTES:
        raise _fail("mask", f"({mask.filename!r}) is {len(mask.data):,} bytes; the maximum is {MASK_MAX_BYTES:,}")
    mask_size = (mask.info.width, mask.info.height)
    image_size = (first.info.width, first.info.height)
    if None not in image_size and mask_size != image_size:
        raise _fail(
            "mask",
            f"({mask.filename!r}) is {mask_size[0]}x{mask_size[1]} but the first image is {image_size[0]}x{image_size[1]}; they must match",
        )
