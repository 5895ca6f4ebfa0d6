"""
imageprovider._request
~~~~~~~~~~~~~~~~~~~~~~

Builds request bodies from keyword parameters: leaves out what was not given,
merges ``extra_body``, validates against the endpoint's JSON Schema and then
the model's rules, loads and checks input images, and encodes the exact bytes
that go on the wire.
"""

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _rules, _schemas
from ._inputs import ImageFile, load_image
from .exceptions import RequestValidationError
from .model_specs import MASK_MAX_BYTES, ModelSpec, get_model_spec


def _schema_error(violation: _schemas.SchemaViolation, prefix: str = "Parameter") -> RequestValidationError:
    param = str(violation.path[0]) if violation.path else None
    where = _schemas.format_path(violation.path)
    if where:
        message = f"{prefix} {where!r} {violation.message}"
    else:
        message = f"Request body {violation.message}"
    return RequestValidationError(message, param=param, path=violation.path)


def build_body(
    schema: str, params: Mapping[str, Any], extra_body: Optional[Mapping[str, Any]] = None
) -> Dict[str, Any]:
    """Return the validated request body for ``schema``.

    ``None`` values in ``params`` mean "not given" and are left out.
    ``extra_body`` carries fields the library does not know (for compatible
    servers); those the schema does know are validated like any other.

    :raises RequestValidationError: naming the parameter at fault.
    """
    body = {key: value for key, value in params.items() if value is not None}
    unknown: Dict[str, Any] = {}
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
            if key in known:
                body[key] = value
            else:
                unknown[key] = value
    violation = _schemas.find_violation(schema, body)
    if violation is not None:
        raise _schema_error(violation)
    body.update(unknown)
    return body


def check_form(schema: str, endpoint: str, body: Mapping[str, Any]) -> None:
    """Refuse API parameters of ``endpoint`` that this request form does not take.

    ``extra_body`` passes fields the library does not know; a field the API
    defines for the endpoint but not for this form (``moderation`` in a
    multipart edit) is a mistake, not an extension.
    """
    allowed = set(_schemas.schema_properties(schema))
    known = _rules.known_params(endpoint)
    for key in body:
        if key not in allowed and key in known:
            raise RequestValidationError(
                f"Parameter {key!r} is not accepted in this form of the {endpoint} request ({schema})", param=key
            )


def check_model_rules(body: Mapping[str, Any], endpoint: str = "generations") -> None:
    """Apply the per-model rules for ``body["model"]``; unknown models pass unchecked."""
    spec = model_spec_of(body)
    if spec is not None:
        _rules.check_params(body, spec, endpoint)


def model_spec_of(body: Mapping[str, Any]) -> Optional[ModelSpec]:
    """The table entry for the body's model, or ``None`` for an unknown or absent model."""
    model = body.get("model")
    return get_model_spec(model) if isinstance(model, str) else None


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
    limit = spec.inputs.max_bytes if spec is not None else None
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
