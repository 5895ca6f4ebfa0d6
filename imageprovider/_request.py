"""
imageprovider._request
~~~~~~~~~~~~~~~~~~~~~~

Builds request bodies from keyword parameters: leaves out what was not given,
merges ``extra_body``, validates against the endpoint's JSON Schema and then
the model's rules, loads and checks input images, and encodes the exact bytes
that go on the wire.
"""

import json
from typing import AbstractSet, Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from . import _rules, _schemas
from ._inputs import ImageFile, image_from_data_url, load_image
from .exceptions import RequestValidationError
from .model_specs import MASK_MAX_BYTES, ModelSpec


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
