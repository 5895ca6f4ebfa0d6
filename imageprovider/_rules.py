"""
imageprovider._rules
~~~~~~~~~~~~~~~~~~~~

Per-model request rules that a JSON Schema cannot express, applied from the
facts of the model table (:mod:`imageprovider.model_specs`): shutdown dates,
which endpoints and parameters a model accepts, its value lists and ranges,
prompt length, ``n``, sizes (free ``WIDTHxHEIGHT`` sizes and animation
sheets), what each output format allows, and the input images of edits and
variations. This module holds no facts of its own: whatever the table does
not say is let through.

Values sent through ``extra_body`` are never value-checked: the rules skip
the parameters it set (they still give context, such as the output format).
"""

import datetime
import math
import re
import sys
import threading
import warnings
from types import FrameType
from typing import AbstractSet, Any, Callable, Mapping, Optional, Sequence, Set, Tuple, Union

from ._inputs import ImageFile
from ._schemas import format_path
from .exceptions import ConfigurationError, ModelShutdownWarning, RequestValidationError
from .model_specs import (
    DEFAULT_MODEL,
    MASK_MAX_BYTES,
    CustomSizeRule,
    FormatSpec,
    ModelSpec,
    ModelTable,
    builtin_table,
    utc_today,
)

# \Z, not $: "$" would accept a trailing newline. Five digits bound int() work.
_SIZE_PATTERN = re.compile(r"([0-9]{1,5})x([0-9]{1,5})\Z")
#: What the API uses when ``output_format`` is not sent.
DEFAULT_OUTPUT_FORMAT = "png"
#: The API's own ceiling on input images, whatever the model.
MAX_INPUT_IMAGES = 16

Clock = Callable[[], datetime.date]
#: What a provider's ``clock=`` takes: a fixed date, a callable returning one, or ``None`` for today (UTC).
ClockArg = Union[None, datetime.date, Clock]


def as_clock(clock: ClockArg) -> Clock:
    """A clock from what ``clock=`` was given.

    :raises ConfigurationError: neither a date nor a callable.
    """
    if clock is None:
        return utc_today
    if isinstance(clock, datetime.date):
        fixed = clock if not isinstance(clock, datetime.datetime) else clock.date()
        return lambda: fixed
    if callable(clock):
        return clock
    raise ConfigurationError(f"clock must be a datetime.date or a callable returning one, not {type(clock).__name__}")


def _fail(param: str, message: str, path: Tuple[Any, ...] = ()) -> RequestValidationError:
    return RequestValidationError(
        f"Parameter {format_path(path) if path else param!r} {message}", param=param, path=path
    )


def parse_size(size: str) -> Optional[Tuple[int, int]]:
    """``"1536x864"`` -> ``(1536, 864)``; ``None`` when ``size`` is not ``WIDTHxHEIGHT``."""
    match = _SIZE_PATTERN.match(size)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


# -- shutdowns ------------------------------------------------------------------------

_warned_lock = threading.Lock()
_warned: Set[str] = set()


def shutdown_message(spec: ModelSpec, today: datetime.date) -> Optional[str]:
    """What to tell a caller about ``spec``'s shutdown on ``today``; ``None`` for an active model."""
    status = spec.status(today)
    if status.state == "active":
        return None
    when = "was shut down on" if status.state == "shut-down" else "shuts down on"
    announced = f" (announced {spec.announced})" if spec.announced else ""
    if spec.replacements:
        instead = "use {} instead".format(" or ".join(spec.replacements))
    else:
        instead = f"OpenAI named no replacement; the library's default model is {DEFAULT_MODEL}"
    return (
        f"Model {spec.name!r} {when} {status.date}{announced}; {instead}. For a compatible server that still "
        "serves it, pass check_model_rules=False (--no-model-rules)."
    )


def check_shutdown(spec: ModelSpec, today: datetime.date) -> None:
    """Refuse a model whose shutdown date has come; warn once per process about one whose date is announced.

    :raises RequestValidationError: (``param="model"``) on or after the shutdown date.
    """
    message = shutdown_message(spec, today)
    if message is None:
        return
    if spec.status(today).state == "shut-down":
        raise RequestValidationError(message, param="model")
    with _warned_lock:
        if spec.name in _warned:
            return
        _warned.add(spec.name)
    warnings.warn(message, ModelShutdownWarning, stacklevel=_outside_the_package())


def _outside_the_package() -> int:
    """The ``stacklevel`` of the first caller outside this package, so the warning names the caller's line."""
    package = __name__.rsplit(".", 1)[0]
    level = 1
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module != package and not module.startswith(package + "."):
            break
        level, frame = level + 1, frame.f_back
    return level


def forget_shutdown_warnings() -> None:
    """Warn again about models already warned about (for tests)."""
    with _warned_lock:
        _warned.clear()


class ModelRules:
    """The model rules a provider applies: a table, a clock, and whether shutdowns are acted on.

    :param table: the model table (the built-in one by default).
    :param enabled: ``False`` turns every rule off (``check_model_rules=False``).
    :param shutdowns: act on shutdown dates (off for Azure, whose dates are its own).
    :param clock: returns today's date (UTC); injectable so tests are exact.
    """

    def __init__(
        self,
        table: Optional[ModelTable] = None,
        *,
        enabled: bool = True,
        shutdowns: bool = True,
        clock: Optional[Clock] = None,
    ) -> None:
        self.table = table if table is not None else builtin_table()
        self.enabled = enabled
        self.shutdowns = shutdowns
        self.clock: Clock = clock if clock is not None else utc_today

    def spec_for(self, body: Mapping[str, Any]) -> Optional[ModelSpec]:
        """The table entry for the body's model when the rules apply, else ``None``."""
        model = body.get("model")
        if not self.enabled or not isinstance(model, str):
            return None
        return self.table.get(model)

    def check(
        self,
        body: Mapping[str, Any],
        endpoint: str,
        *,
        given_by_extra: AbstractSet[str] = frozenset(),
        files: AbstractSet[str] = frozenset(),
    ) -> None:
        """Apply the rules of the body's model; unknown models (and disabled rules) pass.

        :param given_by_extra: fields that came from ``extra_body``: never value-checked.
        :param files: file parts sent besides the body (``"mask"``).
        :raises RequestValidationError: naming the parameter that breaks a rule.
        """
        spec = self.spec_for(body)
        if spec is None:
            return
        if self.shutdowns and "model" not in given_by_extra:
            check_shutdown(spec, self.clock())
        check_params(body, spec, endpoint, self.table, skip=given_by_extra, files=files)


# -- parameters -----------------------------------------------------------------------


def _models_accepting(table: ModelTable, param: str, endpoint: str) -> str:
    names = sorted(spec.name for spec in table.values() if param in spec.accepted_params(endpoint))
    return ", ".join(names) if names else "no known model"


def _elsewhere(table: ModelTable, param: str, value: str) -> str:
    """Which models take ``value`` for ``param``, as a hint (snapshots left out)."""
    names = sorted(
        spec.name for spec in table.values() if spec.snapshot_of is None and value in spec.values.get(param, ())
    )
    if not names:
        return ""
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return f" ({value!r} is accepted by {shown})"


def check_params(
    body: Mapping[str, Any],
    spec: ModelSpec,
    endpoint: str = "generations",
    table: Optional[ModelTable] = None,
    *,
    skip: AbstractSet[str] = frozenset(),
    files: AbstractSet[str] = frozenset(),
) -> None:
    """Apply ``spec``'s rules to a body for ``endpoint`` that already passed its schema.

    :param skip: parameters not to value-check (set through ``extra_body``).
    :param files: file parts sent besides the body.
    :raises RequestValidationError: naming the parameter that breaks a rule.
    """
    table = table if table is not None else builtin_table()
    checked = {key: value for key, value in body.items() if key not in skip and value is not None}
    _check_endpoint_and_params(checked, spec, endpoint, table)
    prompt = checked.get("prompt")
    if spec.prompt_max_length is not None and isinstance(prompt, str) and len(prompt) > spec.prompt_max_length:
        raise _fail(
            "prompt", f"is {len(prompt):,} characters long; {spec.name} accepts at most {spec.prompt_max_length:,}"
        )
    n = checked.get("n")
    if spec.max_n is not None and isinstance(n, int) and n > spec.max_n:
        raise _fail("n", f"must be at most {spec.max_n} for {spec.name}, not {n}")
    for param, allowed in sorted(spec.values.items()):
        value = checked.get(param)
        if isinstance(value, str) and value not in allowed:
            raise _fail(
                param,
                "must be one of {} for {}, not {!r}{}".format(
                    ", ".join(sorted(allowed)), spec.name, value, _elsewhere(table, param, value)
                ),
            )
    _check_ranges(checked, spec.ranges, f"for {spec.name}")
    output_format = body.get("output_format") or DEFAULT_OUTPUT_FORMAT
    fmt = table.formats.get(output_format) if isinstance(output_format, str) else None
    # The format's rules (frame_count's range among them) before the size: a GIF's
    # sheet is computed from frame_count, which must be in range first.
    _check_format_rules(body, checked, endpoint, output_format, fmt, table, files)
    if checked.get("size") is not None:
        _check_size(checked["size"], spec, body, fmt)
    if checked.get("partial_images") and not body.get("stream"):
        raise _fail("partial_images", "applies only to streaming requests")


def _check_endpoint_and_params(checked: Mapping[str, Any], spec: ModelSpec, endpoint: str, table: ModelTable) -> None:
    if endpoint not in spec.endpoints:
        serving = sorted(other.name for other in table.values() if endpoint in other.endpoints)
        raise _fail(
            "model", "{!r} has no {} endpoint; models that do: {}".format(spec.name, endpoint, ", ".join(serving))
        )
    if spec.params is None:
        return
    accepted = spec.accepted_params(endpoint)
    known = table.known_params(endpoint)
    for param in checked:
        if param not in accepted and param not in spec.unknown_params and param in known:
            raise _fail(
                param,
                f"is not supported by {spec.name} for {endpoint}; it is accepted by {_models_accepting(table, param, endpoint)}",
            )


def _check_ranges(
    checked: Mapping[str, Any], ranges: Mapping[str, Tuple[Optional[int], Optional[int]]], where: str
) -> None:
    for param, (low, high) in sorted(ranges.items()):
        value = checked.get(param)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if low is not None and value < low:
            raise _fail(param, f"must be at least {low} {where}, not {value}")
        if high is not None and value > high:
            raise _fail(param, f"must be at most {high} {where}, not {value}")


def _check_format_rules(
    body: Mapping[str, Any],
    checked: Mapping[str, Any],
    endpoint: str,
    output_format: Any,
    fmt: Optional[FormatSpec],
    table: ModelTable,
    files: AbstractSet[str],
) -> None:
    for other in sorted(table.formats.values(), key=lambda item: item.name):
        if other.name == output_format:
            continue
        for param in sorted(other.format_params):
            if param in checked:
                raise _fail(param, f"applies only to output_format {other.name!r} (output_format is {output_format!r})")
    if fmt is None:
        return
    label = f"with output_format {fmt.name!r}"
    if fmt.endpoints is not None and endpoint not in fmt.endpoints and "output_format" in checked:
        raise _fail(
            "output_format",
            "{!r} is made only by {}, not {}".format(fmt.name, ", ".join(sorted(fmt.endpoints)), endpoint),
        )
    if fmt.transparency is False and checked.get("background") == "transparent":
        raise _fail("background", f"'transparent' is not possible {label}; use png or webp")
    if fmt.compression is False and "output_compression" in checked:
        raise _fail("output_compression", f"does not apply {label}; it applies to jpeg and webp")
    if fmt.streaming is False:
        for param in ("stream", "partial_images"):
            if checked.get(param):
                raise _fail(param, f"is not possible {label}: it cannot be streamed")
    if fmt.mask is False and ("mask" in files or "mask" in checked):
        raise _fail("mask", f"is not possible {label}")
    n = checked.get("n")
    if fmt.max_n is not None and isinstance(n, int) and n > fmt.max_n:
        raise _fail("n", f"must be at most {fmt.max_n} {label}, not {n}")
    _check_ranges(checked, fmt.ranges, label)
    for required in fmt.requires:
        path = tuple(required.split("."))
        if not _has_path(body, path):
            raise _fail(path[0], f"is required {label}", path)


def _has_path(body: Mapping[str, Any], path: Sequence[str]) -> bool:
    current: Any = body
    for part in path:
        if not isinstance(current, Mapping) or current.get(part) in (None, ""):
            return False
        current = current[part]
    return True


# -- sizes ------------------------------------------------------------------------------


def _check_size(size: Any, spec: ModelSpec, body: Mapping[str, Any], fmt: Optional[FormatSpec]) -> None:
    if not isinstance(size, str):
        return
    if fmt is not None and fmt.sheet is not None and spec.custom_size is not None and size != "auto":
        _check_frame_size(size, spec.custom_size, spec.name, body, fmt)
        return
    if spec.sizes is not None and size in spec.sizes:
        return
    if spec.custom_size is not None:
        _check_custom_size(size, spec.custom_size, spec.name)
        return
    if spec.custom_sizes is False and spec.sizes is not None:
        raise _fail("size", "must be one of {} for {}, not {!r}".format(", ".join(sorted(spec.sizes)), spec.name, size))


def _parse_for(size: str, rule: CustomSizeRule, model: str) -> Tuple[int, int]:
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
    return width, height


def _check_custom_size(size: str, rule: CustomSizeRule, model: str) -> None:
    width, height = _parse_for(size, rule, model)
    if max(width, height) > rule.max_edge:
        raise _fail("size", f"{size!r}: no edge may be longer than {rule.max_edge} pixels")
    pixels = width * height
    if not rule.min_pixels <= pixels <= rule.max_pixels:
        raise _fail(
            "size", f"{size!r} has {pixels:,} pixels; {model} accepts {rule.min_pixels:,} to {rule.max_pixels:,}"
        )


def sheet_size(width: int, height: int, frames: int, layout: str) -> Tuple[int, int, str]:
    """The sheet ``frames`` frames of ``width`` x ``height`` are tiled on: (width, height, how)."""
    if layout == "row":
        return width * frames, height, f"in one row of {frames}"
    side = math.isqrt(frames - 1) + 1 if frames > 1 else 1
    return width * side, height * side, f"{side} by {side}"


def _check_frame_size(size: str, rule: CustomSizeRule, model: str, body: Mapping[str, Any], fmt: FormatSpec) -> None:
    # The size of an animation is one frame's: below the still-image minimum is fine
    # (512x512 frames are valid), but the sheet the frames are tiled on must fit the limits.
    width, height = _parse_for(size, rule, model)
    frames = body.get("frame_count")
    count = (
        frames if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0 else fmt.default_frame_count
    )
    if not count or fmt.sheet is None:
        return
    sheet_width, sheet_height, how = sheet_size(width, height, count, fmt.sheet)
    pixels = sheet_width * sheet_height
    problem = None
    if max(sheet_width, sheet_height) > rule.max_edge:
        problem = f"an edge longer than {rule.max_edge} pixels"
    elif not rule.min_pixels <= pixels <= rule.max_pixels:
        problem = f"{pixels:,} pixels, outside {rule.min_pixels:,} to {rule.max_pixels:,}"
    if problem is not None:
        raise _fail(
            "size",
            f"{size!r} is one frame of {count}; the frames are tiled {how} on a {sheet_width}x{sheet_height} sheet with "
            f"{problem} for {model}. Use smaller frames or fewer of them",
        )


# -- input images -----------------------------------------------------------------------


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
    rule = spec.inputs if spec is not None else None
    limit = rule.max_images if rule is not None else MAX_INPUT_IMAGES
    if len(images) > limit:
        where = f"{spec.name} accepts" if spec is not None and rule is not None else "the API accepts"
        raise _fail(param, f"has {len(images)} images; {where} at most {limit}")
    for index, image in enumerate(images):
        path = (param, index) if len(images) > 1 or param == "images" else (param,)
        if spec is not None and rule is not None:
            _check_input_against(image, spec, param, path)
    if mask is not None:
        check_overlay("mask", mask, images[0])


def _check_input_against(image: ImageFile, spec: ModelSpec, param: str, path: Tuple[Any, ...]) -> None:
    rule = spec.inputs
    if rule is None:
        return
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


def check_overlay(param: str, overlay: ImageFile, first: ImageFile) -> None:
    """A mask or markup: a PNG with an alpha channel, under 4 MB, the size of the first image."""
    if overlay.info.mime_type != "image/png" or not overlay.info.has_alpha:
        what = "transparent pixels mark the area to edit" if param == "mask" else "it is drawn over the first image"
        raise _fail(param, f"({overlay.filename!r}) must be a PNG with an alpha channel; {what}")
    if len(overlay.data) > MASK_MAX_BYTES:
        raise _fail(param, f"({overlay.filename!r}) is {len(overlay.data):,} bytes; the maximum is {MASK_MAX_BYTES:,}")
    overlay_size = (overlay.info.width, overlay.info.height)
    image_size = (first.info.width, first.info.height)
    if None not in image_size and None not in overlay_size and overlay_size != image_size:
        raise _fail(
            param,
            f"({overlay.filename!r}) is {overlay_size[0]}x{overlay_size[1]} but the first image is {image_size[0]}x{image_size[1]}; they must match",
        )
