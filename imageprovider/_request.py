"""
imageprovider._request
~~~~~~~~~~~~~~~~~~~~~~

Builds an images request from keyword parameters, in one function,
:func:`prepare`, for every kind of call: leaves out what was not given,
merges ``extra_body``, checks the body against the endpoint's JSON Schema
(shape) and then the model's rules, loads and checks input images, and
encodes the exact bytes that go on the wire. The result, a
:class:`PreparedImageRequest`, is what the provider sends, what a Batch API
line holds, and what ``--dry-run`` shows.
"""

import json
import logging
from dataclasses import dataclass
from typing import AbstractSet, Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from . import _multipart, _rules, _schemas
from ._inputs import ImageFile, image_from_data_url, load_image
from ._log import LOGGER, fields
from .exceptions import RequestValidationError
from .model_specs import MASK_MAX_BYTES, ModelSpec

log = LOGGER


class Kind(NamedTuple):
    """What one kind of images call sends."""

    #: The request schema (shape and types).
    schema: str
    endpoint: str
    #: ``True`` for multipart uploads, ``False`` for a JSON body.
    multipart: bool
    stream: bool
    #: The parameter holding the input images of an upload.
    file_param: Optional[str] = None


#: Every kind of images call, by the name :func:`prepare` and ``provider.prepare_request`` take.
KINDS: Mapping[str, Kind] = {
    "generate": Kind("create_image_request", "generations", False, False),
    "stream": Kind("create_image_request", "generations", False, True),
    "edit": Kind("create_image_edit_request", "edits", True, False, "images"),
    "stream_edit": Kind("create_image_edit_request", "edits", True, True, "images"),
    "edit_refs": Kind("edit_image_body_json_param", "edits", False, False),
    "variation": Kind("create_image_variation_request", "variations", True, False, "image"),
}
#: The method a kind's streaming counterpart is called with, for messages.
_STREAMING_METHODS = {"generate": "stream_image", "edit": "stream_edit", "edit_refs": "stream_edit"}


@dataclass(frozen=True)
class PreparedImageRequest:
    """An images request, built and checked, ready to send.

    Made by ``provider.prepare_request(kind, ...)``; nothing has been sent.
    """

    #: One of :data:`KINDS`.
    kind: str
    #: ``generations``, ``edits`` or ``variations``.
    endpoint: str
    #: The fields sent, file parts summarised by name, type and size (for records and sidecars).
    body: Mapping[str, Any]
    #: The exact bytes of the body.
    payload: bytes
    content_type: str
    #: Whether the answer is an event stream.
    stream: bool

    @property
    def model(self) -> Optional[str]:
        """The model the request names, if any."""
        model = self.body.get("model")
        return model if isinstance(model, str) else None

    @property
    def expected_images(self) -> int:
        """How many images the request asks for: its ``n``, or 1."""
        count = self.body.get("n")
        return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def prepare(
    kind: str,
    params: Mapping[str, Any],
    extra_body: Optional[Mapping[str, Any]],
    rules: _rules.ModelRules,
) -> PreparedImageRequest:
    """Build, check and encode one images request.

    :param kind: one of :data:`KINDS`.
    :param params: the call's keyword parameters (``None`` means not given),
        with the input images under the kind's file parameter and ``mask``.
    :raises RequestValidationError: a parameter or input is invalid (nothing was sent).
    """
    shape = KINDS[kind]
    fields = dict(params)
    images = fields.pop(shape.file_param, None) if shape.multipart and shape.file_param else None
    mask = fields.pop("mask", None) if shape.multipart else None
    if shape.stream:
        # On the wire as before the streaming options were added: "stream", then "partial_images".
        partial_images = fields.pop("partial_images", None)
        fields["stream"] = True
        fields["partial_images"] = partial_images
    files = frozenset({"mask"}) if mask is not None else frozenset()
    body, from_extra = assemble(shape.schema, fields, extra_body)
    check_form(shape.schema, shape.endpoint, body, rules.table.known_params(shape.endpoint), from_extra)
    rules.check(body, shape.endpoint, given_by_extra=from_extra, files=files)
    if not shape.stream and body.get("stream"):
        raise RequestValidationError(
            f"Parameter 'stream' is not supported by {_METHODS[kind]}, which returns whole images; use "
            f"{_STREAMING_METHODS.get(kind, 'a streaming method')}()",
            param="stream",
        )
    spec = rules.spec_for(body)
    if kind == "edit_refs" and spec is not None:
        if body.get("markup") is not None and "markup" not in from_extra:
            check_markup_refs(body)
        if spec.json_edits is False:
            raise RequestValidationError(
                f"Parameter 'model' {spec.name!r} takes edits as multipart uploads only; use edit_image()",
                param="model",
            )
    _log_parameters(body)
    if not shape.multipart:
        return PreparedImageRequest(kind, shape.endpoint, body, encode_json(body), "application/json", shape.stream)
    file_param = shape.file_param or "image"
    loaded, mask_file = load_inputs(file_param, as_input_list(images), mask, spec)
    payload, content_type = _multipart.encode(body, _multipart.image_fields(loaded), mask_file)
    # What was sent, for records and sidecar metadata: the files by name, type and size.
    sent = dict(body)
    sent[file_param] = [_file_summary(image) for image in loaded]
    if mask_file is not None:
        sent["mask"] = _file_summary(mask_file)
    return PreparedImageRequest(kind, shape.endpoint, sent, payload, content_type, shape.stream)


_METHODS = {
    "generate": "generate_image",
    "stream": "stream_image",
    "edit": "edit_image",
    "stream_edit": "stream_edit",
    "edit_refs": "edit_image_from_refs",
    "variation": "create_variation",
}


def _file_summary(image: ImageFile) -> Dict[str, Any]:
    return {"filename": image.filename, "content_type": image.mime_type, "bytes": len(image.data)}


def _log_parameters(body: Mapping[str, Any]) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    shown = dict(body)
    if isinstance(shown.get("prompt"), str):
        shown["prompt"] = shorten(shown["prompt"])
    if isinstance(shown.get("images"), list):
        shown["images"] = "[{} references]".format(len(shown["images"]))
    try:
        text = repr(shown)
    except ValueError:  # Python will not print ints of over 4300 digits
        text = "<parameters too large to show>"
    log.debug("Request parameters: %s", text, extra=fields(params=shown))


def _schema_error(violation: _schemas.SchemaViolation, prefix: str = "Parameter") -> RequestValidationError:
    param = str(violation.path[0]) if violation.path else None
    where = _schemas.format_path(violation.path)
    if where:
        message = f"{prefix} {where!r} {violation.message}"
    else:
        message = f"Request body {violation.message}"
    return RequestValidationError(message, param=param, path=violation.path)


class Body(NamedTuple):
    """A request body that passed its schema, and which of its fields came from ``extra_body``."""

    fields: Dict[str, Any]
    #: Fields ``extra_body`` set: type-checked by the schema, never value-checked.
    from_extra: FrozenSet[str]


def build_body(
    schema: str, params: Mapping[str, Any], extra_body: Optional[Mapping[str, Any]] = None
) -> Dict[str, Any]:
    """Return the validated request body for ``schema`` (see :func:`assemble`)."""
    return assemble(schema, params, extra_body).fields


def assemble(schema: str, params: Mapping[str, Any], extra_body: Optional[Mapping[str, Any]] = None) -> Body:
    """Merge ``params`` and ``extra_body`` into a body and check it against ``schema``.

    ``None`` values in ``params`` mean "not given" and are left out.
    ``extra_body`` may set any field: those the schema knows are type-checked
    like any other, the rest are sent as they are; none is value-checked by
    the model rules.

    :raises RequestValidationError: naming the parameter at fault.
    """
    body = {key: value for key, value in params.items() if value is not None}
    unknown: Dict[str, Any] = {}
    from_extra = set()
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise RequestValidationError(
                "Parameter 'extra_body' must be a mapping of field names to values", param="extra_body"
            )
        known = _schemas.schema_properties(schema)
        for key, value in extra_body.items():
            if not isinstance(key, str):
                raise RequestValidationError(
                    f"Parameter 'extra_body' keys must be strings, not {key!r}", param="extra_body"
                )
            if key in body:
                raise RequestValidationError(
                    f"Parameter {key!r} is given both as an argument and in extra_body", param=key
                )
            from_extra.add(key)
            if key in known:
                body[key] = value
            else:
                unknown[key] = value
    violation = _schemas.find_violation(schema, body)
    if violation is not None:
        raise _schema_error(violation)
    body.update(unknown)
    return Body(body, frozenset(from_extra))


def check_form(
    schema: str, endpoint: str, body: Mapping[str, Any], known: AbstractSet[str], skip: AbstractSet[str] = frozenset()
) -> None:
    """Refuse API parameters of ``endpoint`` that this request form does not take.

    A field the API defines for the endpoint but not for this form
    (``moderation`` in a multipart edit) is a mistake when passed as a
    parameter; ``extra_body`` (``skip``) may send anything.

    :param known: every parameter the model table knows for ``endpoint``.
    """
    allowed = set(_schemas.schema_properties(schema))
    for key in body:
        if key not in allowed and key in known and key not in skip:
            raise RequestValidationError(
                f"Parameter {key!r} is not accepted in this form of the {endpoint} request ({schema})", param=key
            )


def check_markup_refs(body: Mapping[str, Any]) -> None:
    """A ``markup`` given as a data URL: a PNG with an alpha channel, the size of the first image (when also a data URL)."""
    markup = body.get("markup")
    if not isinstance(markup, Mapping):
        return
    overlay = image_from_data_url(markup.get("image_url"), "markup", ("markup", "image_url"))
    if overlay is None:
        return
    images = body.get("images")
    first_ref = images[0] if isinstance(images, list) and images and isinstance(images[0], Mapping) else {}
    first = image_from_data_url(first_ref.get("image_url"), "images", ("images", 0, "image_url"))
    _rules.check_overlay("markup", overlay, first if first is not None else overlay)


def as_input_list(images: Any) -> List[Any]:
    """One input or several: a list (or a tuple that is not a file tuple) is several."""
    if isinstance(images, list):
        return list(images)
    if isinstance(images, tuple) and not _is_file_tuple(images):
        return list(images)
    return [images]


def _is_file_tuple(value: Tuple[Any, ...]) -> bool:
    return len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], (bytes, bytearray))


def load_inputs(
    param: str,
    images: Sequence[Any],
    mask: Any,
    spec: Optional[ModelSpec],
) -> Tuple[List[ImageFile], Optional[ImageFile]]:
    """Read and check the input images (and mask) of an edit or variation."""
    limit = spec.inputs.max_bytes if spec is not None and spec.inputs is not None else None
    if len(images) > _rules.MAX_INPUT_IMAGES:
        raise RequestValidationError(
            f"Parameter {param!r} has {len(images)} images; the API accepts at most {_rules.MAX_INPUT_IMAGES}",
            param=param,
        )
    several = len(images) > 1 or param == "images"
    files = [
        load_image(image, param, (param, index) if several else (param,), limit) for index, image in enumerate(images)
    ]
    mask_file = load_image(mask, "mask", ("mask",), MASK_MAX_BYTES) if mask is not None else None
    _rules.check_inputs(param, files, mask_file, spec)
    return files, mask_file


def encode_json(body: Mapping[str, Any]) -> bytes:
    """Encode ``body`` as compact UTF-8 JSON, refusing what would not be valid JSON."""
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError) as exc:
        param = _find_unencodable(body)
        raise RequestValidationError(
            f"Parameter {param!r} cannot be encoded as JSON: {_reason(exc)}", param=param
        ) from exc


def _find_unencodable(body: Mapping[str, Any]) -> Optional[str]:
    for key, value in body.items():
        try:
            json.dumps({key: value}, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValueError, TypeError):
            return key
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeError):
        return "it contains characters that are not valid Unicode (lone surrogates)"
    return str(exc)[:200]


def shorten(text: str, limit: int = 60) -> str:
    """Shorten a prompt for logs: the first ``limit`` characters and the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"
