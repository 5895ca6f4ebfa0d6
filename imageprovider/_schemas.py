"""
imageprovider._schemas
~~~~~~~~~~~~~~~~~~~~~~

Finds the JSON Schema files, compiles one validator per schema (once, on first
use) and turns ``jsonschema`` errors into :class:`SchemaViolation` values with
messages a person can act on. ``jsonschema`` is imported lazily so that
``import imageprovider`` stays cheap for scripts and cron jobs.

The files live once, in the repository's top-level ``schemas/`` folder. They
are found in this order:

1. ``<package>/schemas/`` -- where a built wheel puts them (``setup.cfg``
   maps the top-level folder onto the ``imageprovider.schemas`` package);
2. ``<folder containing the package>/schemas/`` -- a source checkout, or a
   vendored copy made of the ``imageprovider/`` and ``schemas/`` folders.
"""

import json
import os
import pkgutil
import reprlib
import sys
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from .exceptions import ImageProviderError

if TYPE_CHECKING:  # pragma: no cover
    from jsonschema.exceptions import ValidationError

#: The schema files this version of the library needs.
SCHEMA_NAMES = (
    "create_image_request",
    "create_image_edit_request",
    "edit_image_body_json_param",
    "create_image_variation_request",
    "images_response",
    "image_stream_event",
    "error_response",
    "openai_file",
    "batch",
    "model_list",
    "model_table",
)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT_DIR = os.path.join(os.path.dirname(_PACKAGE_DIR), "schemas")

_lock = threading.Lock()
_validators: Dict[str, Any] = {}

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = 6
_short.maxdict = 4

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


class SchemaViolation(NamedTuple):
    """The most relevant reason an instance failed its schema."""

    #: Where in the instance, e.g. ``("data", 0, "b64_json")``.
    path: Tuple[Any, ...]
    #: A sentence without the offending value's full text (prompts can be long).
    message: str


def _file_name(name: str) -> str:
    return name + ".json"


def schema_location(name: str) -> str:
    """Return the file system path (or package resource) the schema ``name`` is read from."""
    if _read_packaged(name) is not None:
        return os.path.join(_PACKAGE_DIR, "schemas", _file_name(name))
    return os.path.join(_CHECKOUT_DIR, _file_name(name))


def _read_packaged(name: str) -> Optional[bytes]:
    try:
        return pkgutil.get_data(__package__ or "imageprovider", "schemas/" + _file_name(name))
    except (OSError, ImportError, ValueError):
        return None


def _read_beside_package(path: str) -> bytes:
    """The file at ``path`` beside the package (the vendored layout), through the package's own loader when it
    has one: inside a zipapp or any zip import, ``open()`` cannot reach it, the zip importer's ``get_data`` can."""
    package = sys.modules.get(__package__ or "imageprovider")
    get_data = getattr(getattr(package, "__loader__", None), "get_data", None)
    if get_data is not None:
        data: bytes = get_data(path)
        return data
    with open(path, "rb") as handle:
        return handle.read()


def load_schema(name: str) -> Dict[str, Any]:
    """Read and parse the schema ``name`` (without ``.json``)."""
    raw = _read_packaged(name)
    if raw is None:
        path = os.path.join(_CHECKOUT_DIR, _file_name(name))
        try:
            raw = _read_beside_package(path)
        except OSError as exc:
            raise ImageProviderError(
                "JSON Schema file {!r} not found: looked in {} and {}. When vendoring, copy both "
                "the 'imageprovider' and the 'schemas' folders side by side.".format(
                    _file_name(name), os.path.join(_PACKAGE_DIR, "schemas"), _CHECKOUT_DIR
                )
            ) from exc
    try:
        schema = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ImageProviderError(f"JSON Schema file {_file_name(name)!r} is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise ImageProviderError(f"JSON Schema file {_file_name(name)!r} does not hold an object")
    return schema


def get_validator(name: str) -> Any:
    """Return the compiled ``Draft7Validator`` for ``name``, building it on first use."""
    validator = _validators.get(name)
    if validator is not None:
        return validator
    with _lock:
        validator = _validators.get(name)
        if validator is None:
            from jsonschema import Draft7Validator

            validator = Draft7Validator(inline_local_refs(load_schema(name)))
            _validators[name] = validator
    return validator


def inline_local_refs(schema: Dict[str, Any]) -> Dict[str, Any]:
    """``schema`` with each local ``{"$ref": "#/..."}`` replaced by what it points to.

    The files keep their definitions for readers; the validator gets them
    inlined, because jsonschema resolves a ``$ref`` on every use, which halves
    the speed of checking a response (the check runs on every call). A
    reference that leads back into itself is left as it is.
    """

    def inline(node: Any, following: Tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/") and ref not in following:
                target: Any = schema
                try:
                    for part in ref[2:].split("/"):
                        target = target[part.replace("~1", "/").replace("~0", "~")]
                except (KeyError, IndexError, TypeError):
                    return node  # unresolvable: jsonschema reports it when the schema is applied
                return inline(target, (*following, ref))
            return {key: inline(value, following) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value, following) for value in node]
        return node

    inlined: Dict[str, Any] = inline(schema, ())
    return inlined


def schema_properties(name: str) -> Sequence[str]:
    """The top-level property names the schema ``name`` declares."""
    return tuple(get_validator(name).schema.get("properties", {}))


def find_violation(name: str, instance: Any) -> Optional[SchemaViolation]:
    """Validate ``instance`` against schema ``name``; return the best violation or ``None``."""
    from jsonschema.exceptions import best_match

    validator = get_validator(name)
    try:
        error = best_match(validator.iter_errors(instance))
    except RecursionError:
        return SchemaViolation((), "is nested too deeply to validate")
    except ValueError:
        # Python refuses to turn integers of over 4300 digits into text, which
        # jsonschema does to word its messages; blame the number, not the schema.
        huge = _find_huge_integer(instance, ())
        if huge is None:
            raise
        return SchemaViolation(huge, "is a number too large to handle")
    except Exception as exc:
        raise ImageProviderError(
            f"JSON Schema {_file_name(name)!r} could not be applied ({type(exc).__name__}: {exc}); the installed schema files "
            "may be damaged"
        ) from exc
    if error is None:
        return None
    # jsonschema 3.2 descends into one branch of a choice between required
    # fields and blames that branch; 4.x does not. Report the choice itself.
    while error.parent is not None and _is_required_choice(error.parent):
        error = error.parent
    return SchemaViolation(_violation_path(error), _describe(error))


#: Integers this long (in bits) may exceed ``sys.get_int_max_str_digits()`` when printed.
_HUGE_INTEGER_BITS = 4000


def _find_huge_integer(instance: Any, path: Tuple[Any, ...]) -> Optional[Tuple[Any, ...]]:
    if isinstance(instance, int) and not isinstance(instance, bool):
        return path if instance.bit_length() > _HUGE_INTEGER_BITS else None
    items: Iterable[Tuple[Any, Any]] = ()
    if isinstance(instance, dict):
        items = instance.items()
    elif isinstance(instance, (list, tuple)):
        items = enumerate(instance)
    for key, value in items:
        found = _find_huge_integer(value, path + (key,))
        if found is not None:
            return found
    return None


def _is_required_choice(error: "ValidationError") -> bool:
    # Typed as possibly unset; errors that come from a validator always carry them.
    branches: Any = error.validator_value
    return (
        error.validator in ("oneOf", "anyOf")
        and isinstance(error.instance, dict)
        and all(set(branch) == {"required"} for branch in branches)
    )


def format_path(path: Iterable[Any]) -> str:
    """``("data", 0, "url")`` -> ``"data[0].url"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _violation_path(error: "ValidationError") -> Tuple[Any, ...]:
    path = tuple(error.absolute_path)
    required: Any = error.validator_value
    schema: Any = error.schema
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in required if key not in error.instance]
        if missing:
            return path + (missing[0],)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(str(key) for key in error.instance if key not in known)
        if extra:
            return path + (extra[0],)
    return path


def _describe(error: "ValidationError") -> str:
    keyword = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if keyword == "type":
        expected = value if isinstance(value, list) else [value]
        return "must be of type {}, not {}".format(" or ".join(expected), _json_type(instance))
    if keyword == "enum":
        choices = ", ".join(repr(choice) for choice in value if choice is not None)
        return f"must be one of {choices}, not {_short.repr(instance)}"
    if keyword == "minimum":
        return f"must be at least {value}, not {_short.repr(instance)}"
    if keyword == "maximum":
        return f"must be at most {value}, not {_short.repr(instance)}"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if keyword == "maxLength":
        return f"is {len(instance)} characters long; the maximum is {value}"
    if keyword == "minItems":
        return "must contain at least {} item{}".format(value, "" if value == 1 else "s")
    if keyword == "required":
        missing = [key for key in value if isinstance(instance, dict) and key not in instance]
        return "is required" if missing else error.message
    if keyword == "additionalProperties":
        return "is not a known parameter"
    if keyword in ("anyOf", "oneOf") and isinstance(instance, dict):
        options: List[str] = []
        for subschema in value:
            options.extend(subschema.get("required", []))
        if options:
            how = "exactly one" if keyword == "oneOf" else "one"
            return "must have {} of {}".format(how, ", ".join(repr(o) for o in options))
    message = str(error.message)
    return message if len(message) <= 200 else message[:200] + "..."
