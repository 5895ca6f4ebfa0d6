"""
imageprovider.model_specs
~~~~~~~~~~~~~~~~~~~~~~~~~

Everything the library knows about each image model, in one table: which
endpoints and parameters a model takes, its value lists (quality, output
format, background...), sizes, input limits, and its shutdown date and
replacement. The facts live in ``imageprovider/models.json`` (each entry
names its source); :mod:`imageprovider._rules` only applies them.

The table fails open: a fact an entry leaves out is unknown and lets values
through, and a model the table does not know gets the JSON Schema checks
only. It can be extended without a release: an overlay file in the same
format (named by ``IMAGEPROVIDER_MODELS``, ``models_file=`` or ``models_file``
in the config file) is merged over it; see :func:`load_overlay`.
"""

import datetime
import json
import os
import pkgutil
import threading
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, MutableMapping, NamedTuple, Optional, Tuple

from .exceptions import ConfigurationError, ImageProviderError

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_SPECS",
    "TABLE_CHECKED",
    "CustomSizeRule",
    "FormatSpec",
    "InputRule",
    "ModelSpec",
    "ModelStatus",
    "ModelTable",
    "builtin_table",
    "get_model_spec",
    "load_overlay",
]

#: The model sent when none is given. The API's own default is the retired
#: ``dall-e-2``, so the library always sends a model.
DEFAULT_MODEL = "gpt-image-2"

MB = 1024 * 1024
#: Largest edit mask, whatever the model: a PNG with an alpha channel, the size of the first image.
MASK_MAX_BYTES = 4 * MB
#: Where an entry of the built-in table comes from, in listings.
BUILTIN = "built-in"

#: Fields of an entry (or a format) that are maps merged key by key (by ``like``
#: and by overlays); every other field replaces.
_MERGED_FIELDS = ("params", "values", "ranges", "frames")

Range = Tuple[Optional[int], Optional[int]]


@dataclass(frozen=True)
class CustomSizeRule:
    """Limits on free ``WIDTHxHEIGHT`` sizes for models that accept them."""

    #: Width and height must both be multiples of this.
    multiple: int = 16
    #: Longest edge divided by shortest edge may not exceed this (3 means 3:1).
    max_aspect_ratio: float = 3.0
    #: No edge may be longer than this many pixels.
    max_edge: int = 3840
    #: Bounds on width * height (3840x2160 is the maximum resolution).
    min_pixels: int = 655_360
    max_pixels: int = 3840 * 2160


@dataclass(frozen=True)
class InputRule:
    """What input images (edits, variations) the model takes."""

    #: Most images in one request.
    max_images: int = 16
    #: Largest image file, in bytes.
    max_bytes: int = 50 * MB
    #: Accepted formats, as sniffed MIME types.
    formats: FrozenSet[str] = frozenset({"image/png", "image/jpeg", "image/webp"})
    #: Whether every input must be square.
    square: bool = False


@dataclass(frozen=True)
class FormatSpec:
    """What an ``output_format`` allows, whatever the model. ``None`` means unknown (not checked)."""

    name: str
    mime_type: Optional[str] = None
    #: Whether a transparent background is possible.
    transparency: Optional[bool] = None
    #: Whether ``output_compression`` applies.
    compression: Optional[bool] = None
    #: Whether it can be streamed (``stream``, ``partial_images``).
    streaming: Optional[bool] = None
    #: Whether an edit may carry a mask.
    mask: Optional[bool] = None
    #: Largest ``n``.
    max_n: Optional[int] = None
    #: Endpoints that can produce it; ``None`` for all.
    endpoints: Optional[FrozenSet[str]] = None
    #: Parameters that apply only with this format (``frame_count`` for GIF).
    format_params: FrozenSet[str] = frozenset()
    #: Fields required with this format, dotted (``svg.model``).
    requires: Tuple[str, ...] = ()
    #: Parameter -> (lowest, highest) integer allowed with this format.
    ranges: Mapping[str, Range] = field(default_factory=dict)
    #: Frames made when ``frame_count`` is not sent (animated formats).
    default_frame_count: Optional[int] = None
    #: How frames are tiled on one sheet that must itself fit the size limits.
    sheet: Optional[str] = None


class ModelStatus(NamedTuple):
    """Whether a model may still be used: ``active``, ``shutting-down`` or ``shut-down``."""

    state: str
    #: The shutdown date (ISO), when one is announced.
    date: Optional[str] = None

    def __str__(self) -> str:
        if self.state == "shut-down":
            return f"shut down on {self.date}"
        if self.state == "shutting-down":
            return f"shutting down on {self.date}"
        return "active"


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts and returns. ``None`` for a fact means it is unknown, and not checked."""

    name: str
    #: Longest prompt, in characters.
    prompt_max_length: Optional[int] = None
    #: Largest ``n``.
    max_n: Optional[int] = None
    #: Fixed sizes the model accepts.
    sizes: Optional[FrozenSet[str]] = None
    #: Endpoint -> parameters beyond the common ones the model accepts there;
    #: the endpoints the model serves are its keys. ``None``: unknown.
    params: Optional[Mapping[str, FrozenSet[str]]] = None
    #: Parameters whose support is unknown: let through.
    unknown_params: FrozenSet[str] = frozenset()
    #: Parameter -> the values the model accepts for it (quality, output_format...).
    values: Mapping[str, FrozenSet[str]] = field(default_factory=dict)
    #: Parameter -> (lowest, highest) integer the model accepts.
    ranges: Mapping[str, Range] = field(default_factory=dict)
    #: Free ``WIDTHxHEIGHT`` sizes, when the model accepts them.
    custom_size: Optional[CustomSizeRule] = None
    #: Whether free sizes are known to be refused (``False``), governed by
    #: :attr:`custom_size` (``True``), or unknown (``None``).
    custom_sizes: Optional[bool] = None
    #: ``"b64_json"`` if images always come back inline, ``"url"`` if URLs are the default.
    default_response: Optional[str] = None
    #: Input images for edits and variations.
    inputs: Optional[InputRule] = None
    #: Whether edits may reference images in a JSON body (GPT image models) or need multipart.
    json_edits: Optional[bool] = None
    #: Whether OpenAI's Batch API runs it.
    batch_api: Optional[bool] = None
    #: ISO date the model is (or was) shut down, when announced.
    shutdown_date: Optional[str] = None
    #: ISO date the shutdown was announced.
    announced: Optional[str] = None
    #: Models OpenAI names as replacements.
    replacements: Tuple[str, ...] = ()
    #: ISO date the model was released.
    released: Optional[str] = None
    #: The model this one is a dated snapshot of.
    snapshot_of: Optional[str] = None
    notes: str = ""
    #: Where the facts come from (sections of the API facts, with confidence).
    source: str = ""
    #: Where the entry was read: ``"built-in"`` or an overlay file's path.
    origin: str = BUILTIN

    @property
    def endpoints(self) -> FrozenSet[str]:
        """The endpoints the model serves; all three when unknown."""
        if self.params is None:
            return frozenset(COMMON_PARAMS)
        return frozenset(self.params)

    @property
    def qualities(self) -> Optional[FrozenSet[str]]:
        """The ``quality`` values the model accepts (``None``: unknown)."""
        return self.values.get("quality")

    @property
    def extra_params(self) -> Mapping[str, FrozenSet[str]]:
        """Endpoint -> parameters beyond the common ones (every endpoint, none, when unknown)."""
        if self.params is None:
            return {endpoint: frozenset() for endpoint in COMMON_PARAMS}
        return self.params

    @property
    def retired(self) -> Optional[str]:
        """The shutdown date; kept for code written before :attr:`shutdown_date`."""
        return self.shutdown_date

    def accepted_params(self, endpoint: str = "generations") -> FrozenSet[str]:
        """Every parameter this model is known to accept on ``endpoint`` (empty if it does not serve it)."""
        if self.params is not None and endpoint not in self.params:
            return frozenset()
        extra = self.params.get(endpoint, frozenset()) if self.params is not None else frozenset()
        return COMMON_PARAMS.get(endpoint, frozenset()) | extra

    def status(self, today: datetime.date) -> ModelStatus:
        """``active``, ``shutting-down`` (a date is announced) or ``shut-down`` (the date has come)."""
        day = today.isoformat()
        if self.shutdown_date is None or (self.announced is not None and day < self.announced):
            return ModelStatus("active")
        if day >= self.shutdown_date:
            return ModelStatus("shut-down", self.shutdown_date)
        return ModelStatus("shutting-down", self.shutdown_date)

    def as_entry(self) -> Dict[str, Any]:
        """This spec as an entry of the table's JSON format (facts only, no ``like``)."""
        entry: Dict[str, Any] = {}
        simple = (
            "prompt_max_length",
            "max_n",
            "json_edits",
            "batch_api",
            "shutdown_date",
            "announced",
            "released",
            "snapshot_of",
        )
        for name in simple:
            value = getattr(self, name)
            if value is not None:
                entry[name] = value
        if self.params is not None:
            entry["params"] = {endpoint: sorted(names) for endpoint, names in self.params.items()}
        if self.unknown_params:
            entry["unknown_params"] = sorted(self.unknown_params)
        if self.values:
            entry["values"] = {name: sorted(values) for name, values in self.values.items()}
        if self.ranges:
            entry["ranges"] = {name: list(bounds) for name, bounds in self.ranges.items()}
        if self.sizes is not None:
            entry["sizes"] = sorted(self.sizes)
        if self.custom_sizes is not None:
            rule = self.custom_size
            entry["custom_size"] = None if rule is None else dict(rule.__dict__)
        if self.inputs is not None:
            entry["inputs"] = dict(self.inputs.__dict__, formats=sorted(self.inputs.formats))
        if self.default_response is not None:
            entry["returns"] = self.default_response
        if self.replacements:
            entry["replacements"] = list(self.replacements)
        for name in ("notes", "source"):
            if getattr(self, name):
                entry[name] = getattr(self, name)
        return entry


# -- reading the table -------------------------------------------------------------


class _Document(NamedTuple):
    """A table or overlay file, read and checked, with its entries resolved."""

    checked: Optional[str]
    common_params: Dict[str, FrozenSet[str]]
    formats: Dict[str, Dict[str, Any]]
    #: Model name -> the entry with ``like`` resolved.
    entries: Dict[str, Dict[str, Any]]


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> Dict[str, Any]:
    merged = {key: value for key, value in base.items() if key not in ("like",)}
    for key, value in patch.items():
        if key == "like":
            continue
        if key in _MERGED_FIELDS and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _resolve(
    raw: Mapping[str, Mapping[str, Any]], known: Mapping[str, Mapping[str, Any]], origin: str
) -> Dict[str, Dict[str, Any]]:
    """Resolve ``like`` chains of ``raw`` entries; an entry for a name in ``known`` patches that entry."""
    resolved: Dict[str, Dict[str, Any]] = {}

    def resolve(name: str, chain: Tuple[str, ...]) -> Dict[str, Any]:
        if name in resolved:
            return resolved[name]
        if name in chain:
            raise ConfigurationError(f"{origin}: entry {name!r} starts from itself ('like': {' -> '.join(chain)})")
        entry = raw[name]
        like = entry.get("like")
        base: Mapping[str, Any]
        if like is not None:
            if like in raw and like != name:
                base = resolve(like, chain + (name,))
            elif like in known:
                base = known[like]
            else:
                raise ConfigurationError(f"{origin}: entry {name!r} is 'like' {like!r}, which the table does not know")
        else:
            base = known.get(name, {})
        resolved[name] = _merge(base, entry)
        return resolved[name]

    for name in raw:
        resolve(name, ())
    return resolved


def _read_document(data: Any, origin: str, known: Mapping[str, Mapping[str, Any]]) -> _Document:
    common = {endpoint: frozenset(names) for endpoint, names in (data.get("common_params") or {}).items()}
    return _Document(
        checked=data.get("checked"),
        common_params=common,
        formats={name: dict(entry) for name, entry in (data.get("formats") or {}).items()},
        entries=_resolve(data.get("models") or {}, known, origin),
    )


def _range(bounds: Any) -> Range:
    low, high = bounds
    return (low, high)


def _spec(name: str, entry: Mapping[str, Any], origin: str) -> ModelSpec:
    params = entry.get("params")
    custom = entry.get("custom_size", ...)
    inputs = entry.get("inputs")
    return ModelSpec(
        name=name,
        prompt_max_length=entry.get("prompt_max_length"),
        max_n=entry.get("max_n"),
        sizes=frozenset(entry["sizes"]) if entry.get("sizes") is not None else None,
        params=None if params is None else {endpoint: frozenset(names) for endpoint, names in params.items()},
        unknown_params=frozenset(entry.get("unknown_params") or ()),
        values={param: frozenset(values) for param, values in (entry.get("values") or {}).items()},
        ranges={param: _range(bounds) for param, bounds in (entry.get("ranges") or {}).items()},
        custom_size=CustomSizeRule(**custom) if isinstance(custom, Mapping) else None,
        custom_sizes=None if custom is ... else custom is not None,
        default_response=entry.get("returns"),
        inputs=None
        if inputs is None
        else InputRule(
            max_images=inputs.get("max_images", InputRule.max_images),
            max_bytes=inputs.get("max_bytes", InputRule.max_bytes),
            formats=frozenset(inputs["formats"]) if "formats" in inputs else InputRule().formats,
            square=inputs.get("square", False),
        ),
        json_edits=entry.get("json_edits"),
        batch_api=entry.get("batch_api"),
        shutdown_date=entry.get("shutdown_date"),
        announced=entry.get("announced"),
        replacements=tuple(entry.get("replacements") or ()),
        released=entry.get("released"),
        snapshot_of=entry.get("snapshot_of"),
        notes=entry.get("notes") or "",
        source=entry.get("source") or "",
        origin=origin,
    )


def _format(name: str, entry: Mapping[str, Any]) -> FormatSpec:
    frames = entry.get("frames") or {}
    endpoints = entry.get("endpoints")
    return FormatSpec(
        name=name,
        mime_type=entry.get("mime_type"),
        transparency=entry.get("transparency"),
        compression=entry.get("compression"),
        streaming=entry.get("streaming"),
        mask=entry.get("mask"),
        max_n=entry.get("max_n"),
        endpoints=None if endpoints is None else frozenset(endpoints),
        format_params=frozenset(entry.get("format_params") or ()),
        requires=tuple(entry.get("requires") or ()),
        ranges={param: _range(bounds) for param, bounds in (entry.get("ranges") or {}).items()},
        default_frame_count=frames.get("default_count"),
        sheet=frames.get("sheet"),
    )


def _load_builtin() -> _Document:
    raw = pkgutil.get_data(__package__ or "imageprovider", "models.json")
    if raw is None:  # pragma: no cover - a loader that cannot read package data
        raise ImageProviderError("The model table (imageprovider/models.json) could not be read")
    return _read_document(json.loads(raw.decode("utf-8")), "models.json", {})


_BUILTIN_DOCUMENT = _load_builtin()

#: The date the built-in table's facts were last checked against OpenAI's documentation.
TABLE_CHECKED: str = _BUILTIN_DOCUMENT.checked or ""

#: Parameters every model accepts on each endpoint (files such as ``image`` and ``mask`` aside).
COMMON_PARAMS: Mapping[str, FrozenSet[str]] = _BUILTIN_DOCUMENT.common_params

#: Model name -> :class:`ModelSpec`: the built-in table. Entries added here
#: (``MODEL_SPECS["my-model"] = ModelSpec(...)``) are seen by every provider.
MODEL_SPECS: Dict[str, ModelSpec] = {
    name: _spec(name, entry, BUILTIN) for name, entry in _BUILTIN_DOCUMENT.entries.items()
}

_BUILTIN_SPECS = dict(MODEL_SPECS)

_BUILTIN_FORMATS: Dict[str, FormatSpec] = {
    name: _format(name, entry) for name, entry in _BUILTIN_DOCUMENT.formats.items()
}


def get_model_spec(model: str) -> Optional[ModelSpec]:
    """Return the built-in :class:`ModelSpec` for ``model``, or ``None`` for a model the table does not know."""
    return MODEL_SPECS.get(model)


# -- the table a provider uses ------------------------------------------------------------


class ModelTable(Mapping[str, ModelSpec]):
    """The built-in table, possibly with an overlay merged over it: model name -> :class:`ModelSpec`.

    The built-in part is read live from :data:`MODEL_SPECS`.
    """

    def __init__(
        self,
        overlay: Optional[Mapping[str, ModelSpec]] = None,
        formats: Optional[Mapping[str, FormatSpec]] = None,
        common_params: Optional[Mapping[str, FrozenSet[str]]] = None,
        overlay_file: Optional[str] = None,
    ) -> None:
        self._overlay: Dict[str, ModelSpec] = dict(overlay or {})
        self._specs: MutableMapping[str, ModelSpec] = ChainMap(self._overlay, MODEL_SPECS)
        self.formats: Mapping[str, FormatSpec] = dict(formats if formats is not None else _BUILTIN_FORMATS)
        self.common_params: Mapping[str, FrozenSet[str]] = dict(
            common_params if common_params is not None else COMMON_PARAMS
        )
        #: The overlay file merged over the built-in table, if any.
        self.overlay_file = overlay_file
        #: The date the built-in table was last checked.
        self.checked = TABLE_CHECKED

    def __getitem__(self, name: str) -> ModelSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        overlay = f", overlay_file={self.overlay_file!r}" if self.overlay_file else ""
        return f"ModelTable({len(self)} models{overlay})"

    def known_params(self, endpoint: str) -> FrozenSet[str]:
        """Every parameter some model of the table accepts on ``endpoint``, or whose support is in doubt."""
        known: FrozenSet[str] = self.common_params.get(endpoint, frozenset())
        for spec in self.values():
            known |= spec.accepted_params(endpoint) | spec.unknown_params
        for output_format in self.formats.values():
            known |= output_format.format_params
        return known

    def entries(self) -> Dict[str, Dict[str, Any]]:
        """Every model as an entry of the JSON format, resolved."""
        return {name: spec.as_entry() for name, spec in self.items()}


_BUILTIN_TABLE = ModelTable()


def builtin_table() -> ModelTable:
    """The built-in table, without an overlay."""
    return _BUILTIN_TABLE


def utc_today() -> datetime.date:
    """Today's date in UTC: shutdown dates are days, and OpenAI's are not tied to a time zone."""
    return datetime.datetime.now(datetime.timezone.utc).date()


# -- overlays -------------------------------------------------------------------------------

_overlay_lock = threading.Lock()
_overlay_cache: Dict[Tuple[str, int, int], ModelTable] = {}


def load_overlay(path: str) -> ModelTable:
    """The built-in table with the overlay file at ``path`` merged over it.

    The file has the format of ``imageprovider/models.json`` and is checked
    against ``schemas/model_table.json``. An entry for a model the table knows
    is merged over that model's entry; a new entry may start from a known
    model with ``"like"``. Read once per version of the file.

    :raises ConfigurationError: the file cannot be read, is not JSON, or an
        entry is invalid; the message names the file and the entry.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigurationError(f"Models file {path!r} cannot be read: {exc.strerror or exc}") from None
    key = (os.path.abspath(path), info.st_mtime_ns, info.st_size)
    with _overlay_lock:
        cached = _overlay_cache.get(key)
    if cached is not None:
        return cached
    table = _read_overlay(path)
    with _overlay_lock:
        _overlay_cache[key] = table
    return table


#: Largest overlay file read; a table of every image model ever made is a few kilobytes.
MAX_OVERLAY_BYTES = 4 * MB


def _read_overlay(path: str) -> ModelTable:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_OVERLAY_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"Models file {path!r} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_OVERLAY_BYTES:
        raise ConfigurationError(f"Models file {path!r} is larger than {MAX_OVERLAY_BYTES:,} bytes")
    failure = None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        failure = str(exc)[:200]
    if failure is not None:
        raise ConfigurationError(f"Models file {path!r} is not valid JSON: {failure}")
    from . import _schemas  # jsonschema is loaded only when an overlay is used

    violation = _schemas.find_violation("model_table", data)
    if violation is not None:
        raise ConfigurationError(f"Models file {path!r}: {_describe_violation(violation.path, violation.message)}")
    document = _read_document(data, f"Models file {path!r}", _known_entries())
    specs = {name: _spec(name, entry, path) for name, entry in document.entries.items()}
    formats = dict(_BUILTIN_FORMATS)
    for name, entry in document.formats.items():
        formats[name] = _format(name, _merge(_BUILTIN_DOCUMENT.formats.get(name, {}), entry))
    common = {**COMMON_PARAMS, **document.common_params}
    return ModelTable(specs, formats, common, overlay_file=path)


def _known_entries() -> Dict[str, Dict[str, Any]]:
    """Entries an overlay may patch or start from: the built-in ones, and models added to :data:`MODEL_SPECS` in code."""
    known = {}
    for name, spec in MODEL_SPECS.items():
        entry = _BUILTIN_DOCUMENT.entries.get(name)
        known[name] = entry if entry is not None and _BUILTIN_SPECS.get(name) is spec else spec.as_entry()
    return known


def _describe_violation(path: Tuple[Any, ...], message: str) -> str:
    from ._schemas import format_path

    if len(path) >= 2 and path[0] == "models":
        rest = format_path(path[2:])
        return "entry {!r}{} {}".format(path[1], f", field {rest!r}" if rest else "", message)
    where = format_path(path)
    return f"field {where!r} {message}" if where else message


def overlay_document(table: Mapping[str, ModelSpec], names: List[str]) -> Dict[str, Any]:
    """An overlay file's content holding the entries of ``names`` as ``table`` has them."""
    return {"models": {name: table[name].as_entry() for name in names}}
