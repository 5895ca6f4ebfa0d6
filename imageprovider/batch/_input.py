"""
imageprovider.batch._input
~~~~~~~~~~~~~~~~~~~~~~~~~~

Reads the prompts of a batch run from a JSON Lines, CSV or plain-text file
(or a list of prompt strings and dicts, :func:`parse_objects`) into
:class:`BatchItem` objects, each with a stable id that names its output
files. Malformed lines come back as :class:`InputProblem` entries, never
silently dropped; two items with the same id raise :class:`DuplicateIdError`
before any request is made. Only structure and types are checked here:
parameter values are left to the batch runner, which applies the library's
request rules.
"""

import csv
import difflib
import hashlib
import io
import json
import os
import re
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union, cast

from .._files import PathLike
from .._saving import IMAGE_SUFFIXES, WINDOWS_RESERVED, expected_images, image_names
from ..exceptions import ImageProviderError, RequestValidationError
from ..provider import EDIT_PARAMETERS, GENERATION_PARAMETERS

__all__ = [
    "BatchItem",
    "InputProblem",
    "BatchInput",
    "DuplicateIdError",
    "read_items",
    "parse_items",
    "parse_objects",
    "item_id",
]

#: Input formats understood by :func:`parse_items`.
FORMATS = ("jsonl", "csv", "text")
#: Format chosen by :func:`read_items` from the file extension; anything else is ``"text"``.
_FORMAT_BY_EXTENSION = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
#: Generation and edit parameters an item may set (keyword names of
#: ``generate_image``/``edit_image``). Streaming ones (``partial_images``) are
#: left out: batch items are not streamed.
PARAMETERS = frozenset(GENERATION_PARAMETERS) | frozenset(EDIT_PARAMETERS)
#: Parameters whose CSV cells are converted to ``int`` (when they are allowed at all).
INT_PARAMETERS = frozenset({"n", "output_compression", "partial_images", "frame_count", "frame_duration_ms"})
#: Parameters whose CSV cells hold JSON objects.
JSON_PARAMETERS = frozenset({"svg", "extra_body"})
#: Every key (JSONL) or column (CSV) an item may have. ``extra_body`` passes
#: fields the library does not know yet, as the provider's methods take it.
FIELDS = PARAMETERS | {"prompt", "id", "images", "mask", "extra_body"}
#: Longest id an item may give.
MAX_ID_LENGTH = 100
#: Hex digits of SHA-256 kept in a derived id.
DERIVED_ID_LENGTH = 16

# ASCII only: ids become file names, and other scripts bring normalisation and
# case-folding differences between file systems.
_ID_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_CSV_IMAGE_SEPARATORS = re.compile(r"[|;]")


class BatchItem(NamedTuple):
    """One request of a batch, read from one line (or CSV row) of the input."""

    #: Given in the input, or derived from the content by :func:`item_id`.
    id: str
    prompt: str
    #: Generation or edit parameters; CSV numbers are already ``int``.
    params: Dict[str, Any]
    #: Input image paths, as written in the file; empty for a generation.
    images: Tuple[str, ...]
    mask: Optional[str]
    #: 1-based line the item starts on in the source (for a list of items, its 1-based position).
    line: int

    @property
    def kind(self) -> str:
        """``"edit"`` when the item has input images, else ``"generate"``."""
        return "edit" if self.images else "generate"


class InputProblem(NamedTuple):
    """A line that could not be read as an item."""

    #: 1-based line in a file; 1-based position in a list of items.
    line: int
    #: Starts with ``"line N: "`` (a file) or ``"items[i]: "`` (a list), then says what is wrong.
    message: str


class BatchInput(NamedTuple):
    """What :func:`read_items` found: the items, and the lines it could not use."""

    items: List[BatchItem]
    problems: List[InputProblem]


class DuplicateIdError(ImageProviderError, ValueError):
    """Two or more items share an id, so their outputs would overwrite each other.

    Ids differing only in case count as the same: they name the same file on
    Windows and macOS.

    :ivar duplicates: each duplicated id (as first written) and the lines that use it.
    :ivar source: the file (or label) the items came from.
    """

    def __init__(
        self,
        duplicates: Mapping[str, Sequence[int]],
        source: str = "<input>",
        spellings: Optional[Mapping[str, Sequence[str]]] = None,
        colliding_files: bool = False,
    ) -> None:
        if colliding_files:
            described = "; ".join(
                "{} on lines {}".format(label, ", ".join(str(line) for line in lines))
                for label, lines in duplicates.items()
            )
            super().__init__(
                f"Items in {source} would overwrite each other's files: {described}. Give them ids that do not "
                "collide (an id is the file name; several images add -1, -2...)."
            )
            self.duplicates = {label: tuple(lines) for label, lines in duplicates.items()}
            self.source = source
            return
        parts = []
        for ident, lines in duplicates.items():
            part = "{!r} on lines {}".format(ident, ", ".join(str(line) for line in lines))
            written = [spelling for spelling in (spellings or {}).get(ident, ()) if spelling != ident]
            if written:
                part += " (also written {})".format(", ".join(repr(spelling) for spelling in written))
            parts.append(part)
        super().__init__(
            "Duplicate ids in {}: {}. Each item needs its own id: remove the repeated items or give them "
            "distinct 'id' values (JSONL and CSV); an item without an id gets one derived from its prompt, "
            "parameters and images, so identical items share it.".format(source, "; ".join(parts))
        )
        self.duplicates = {ident: tuple(lines) for ident, lines in duplicates.items()}
        self.source = source


def read_items(path: PathLike, *, format: Optional[str] = None) -> BatchInput:
    """Read the items of a batch from the file at ``path``.

    :param format: ``"jsonl"``, ``"csv"`` or ``"text"``; by default from the
        extension (``.jsonl``/``.ndjson``, ``.csv``, anything else is text).
    :raises ValueError: the file is not UTF-8, or ``format`` is unknown.
    :raises DuplicateIdError: two items share an id (nothing has been sent).
    :raises OSError: the file cannot be read.

    Usage::

        >>> batch = read_items("prompts.jsonl")
        >>> for problem in batch.problems:
        ...     print(problem.message)
        line 7: not valid JSON (Expecting ',' delimiter at column 31)
        >>> [item.id for item in batch.items]
        ['fox', '3f0c9a1e2b7d4c55']
    """
    name = os.fspath(path)
    chosen = format if format is not None else _format_for(name)
    _check_format(chosen, name)
    with open(name, "rb") as stream:
        data = stream.read()
    try:
        # utf-8-sig drops the byte order mark some editors (Excel's "CSV UTF-8") put first.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{name} is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8"
        ) from exc
    # newline="" keeps line endings for the csv module and splits only on
    # \n, \r and \r\n, so a U+2028 inside a JSON string does not split a line.
    return parse_items(io.StringIO(text, newline=""), chosen, source=name)


def parse_items(lines: Iterable[str], format: str, source: str = "<input>") -> BatchInput:
    """Parse ``lines`` (with or without line endings) in ``format``.

    :param source: names the input in error messages.
    :raises ValueError: ``format`` is unknown.
    :raises DuplicateIdError: two items share an id.
    """
    _check_format(format, source)
    rows = _without_bom(lines)
    if format == "jsonl":
        entries = _parse_jsonl(rows)
    elif format == "csv":
        entries = _parse_csv(rows)
    else:
        entries = _parse_text(rows)
    items: List[BatchItem] = []
    problems: List[InputProblem] = []
    for entry in entries:
        if isinstance(entry, BatchItem):
            items.append(entry)
        else:
            problems.append(entry)
    refuse_duplicates(items, source)
    return BatchInput(items, problems)


def parse_objects(entries: Sequence[Any], source: str = "items") -> BatchInput:
    """Items from Python objects, as the batch runners take them in a list.

    Each entry is a prompt string (stripped, as a text file's line is; but a
    list has no comments or blank lines to skip, so ``"# x"`` is a prompt and
    an empty string a problem), a mapping with the fields of a JSONL line
    (``prompt``, ``id``, parameters, ``images``, ``mask``, ``extra_body``;
    checked as a JSONL line is), or a :class:`BatchItem` (taken as it is). A malformed string or mapping is a
    problem at its position (``line`` is the 1-based position; the message
    starts with ``items[i]``), as a malformed line is in a file.

    :raises RequestValidationError: an entry is none of these (``param="items"``).
    :raises DuplicateIdError: two items share an id.

    Usage::

        >>> batch = parse_objects(["A red fox", {"id": "owl", "prompt": "An owl", "size": "1024x1024"}])
        >>> [item.id for item in batch.items]
        ['b6fffde1d6e72890', 'owl']
    """
    items: List[BatchItem] = []
    problems: List[InputProblem] = []
    for index, entry in enumerate(entries):
        where = f"{source}[{index}]"
        if isinstance(entry, BatchItem):
            items.append(entry)
            continue
        if isinstance(entry, str):
            made = _make_item({"prompt": entry.strip()}, index + 1, "key", where=where)
        elif isinstance(entry, Mapping):
            try:
                made = _make_item(_plain_fields(entry), index + 1, "key", where=where)
            except (TypeError, ValueError) as exc:  # the id is derived from the values as JSON
                made = _problem(index + 1, f"values must be JSON types ({exc})", where=where)
        else:
            raise RequestValidationError(
                f"{where} is {type(entry).__name__}; each item must be a prompt string, a dict of item fields "
                "(prompt, id, parameters, images, mask, extra_body) or a BatchItem",
                param="items",
            )
        if isinstance(made, BatchItem):
            items.append(made)
        else:
            problems.append(made)
    refuse_duplicates(items, source)
    return BatchInput(items, problems)


def _plain_fields(entry: Mapping[Any, Any]) -> Dict[Any, Any]:
    # Python callers write paths as Path objects and lists as tuples, which JSON never gives.
    fields = dict(entry)
    images = fields.get("images")
    if isinstance(images, os.PathLike):
        fields["images"] = os.fspath(images)
    elif isinstance(images, (list, tuple)):
        fields["images"] = [os.fspath(path) if isinstance(path, os.PathLike) else path for path in images]
    if isinstance(fields.get("mask"), os.PathLike):
        fields["mask"] = os.fspath(fields["mask"])
    return fields


def item_id(prompt: str, params: Mapping[str, Any], images: Sequence[str] = (), mask: Optional[str] = None) -> str:
    """The id of an item that gives none: 16 hex digits of SHA-256 over its content.

    Key order and position in the file do not matter; parameters set to
    ``None`` count as not given.

    >>> item_id("A red fox", {"size": "1024x1024", "n": None}) == item_id("A red fox", {"size": "1024x1024"})
    True
    """
    paths = [images] if isinstance(images, str) else list(images)
    content = {
        "prompt": prompt,
        "params": {key: value for key, value in params.items() if value is not None},
        "images": paths,
        "mask": mask,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate from a JSON escape still gets an id; the
    # runner reports it when it encodes the request.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:DERIVED_ID_LENGTH]


def _format_for(path: str) -> str:
    return _FORMAT_BY_EXTENSION.get(os.path.splitext(path)[1].lower(), "text")


def _check_format(format: str, source: str) -> None:
    if format not in FORMATS:
        raise ValueError(
            "Unknown input format {!r} for {}; expected one of {}".format(format, source, ", ".join(FORMATS))
        )


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    # Callers of parse_items may have decoded with plain utf-8.
    first = True
    for line in lines:
        if first and line.startswith("\ufeff"):
            line = line[1:]
        first = False
        yield line


Entry = Union[BatchItem, InputProblem]


def _problem(line: int, *reasons: str, where: Optional[str] = None) -> InputProblem:
    return InputProblem(line, "{}: {}".format(where or f"line {line}", "; ".join(reasons)))


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    # json keeps the last of repeated keys; a repeated "prompt" is a mistake to report.
    result: Dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _parse_jsonl(lines: Iterable[str]) -> Iterator[Entry]:
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            value = json.loads(text, object_pairs_hook=_object_without_duplicates)
        except _DuplicateKey as exc:
            yield _problem(number, f"key {exc.args[0]!r} appears more than once")
            continue
        except json.JSONDecodeError as exc:
            yield _problem(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:
            yield _problem(number, f"not valid JSON ({str(exc)[:200]})")
            continue
        if not isinstance(value, dict):
            yield _problem(number, f'expected a JSON object with a "prompt", got {_json_type(value)}')
            continue
        yield _make_item(value, number, "key")


def _parse_csv(lines: Iterable[str]) -> Iterator[Entry]:
    # strict: a stray quote is an error to report, not a field that swallows
    # the rest of the file.
    reader = csv.reader(lines, strict=True)
    header: Optional[List[str]] = None
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start, previous = previous + 1, reader.line_num
            yield _problem(start, f"not valid CSV ({exc})")
            continue
        # A quoted field may span lines: report the line the record starts on.
        start, previous = previous + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            trouble = _header_trouble(header)
            if trouble:
                yield _problem(start, trouble + "; no row can be read")
                return
            continue
        yield _csv_item(header, row, start)


def _header_trouble(header: List[str]) -> Optional[str]:
    if "prompt" not in header:
        return "the header has no 'prompt' column (found {})".format(", ".join(repr(name) for name in header))
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        return "the header repeats column {}".format(", ".join(repr(name) for name in repeated))
    return None


def _csv_item(header: List[str], row: List[str], line: int) -> Entry:
    reasons: List[str] = []
    extra = [cell for cell in row[len(header) :] if cell.strip()]
    if extra:
        reasons.append(f"{len(row)} fields, but the header has {len(header)} columns")
    fields: Dict[str, Any] = {}
    # Rows shorter than the header are common in spreadsheet exports: missing cells are empty.
    for column, (name, cell) in enumerate(zip(header, row), 1):
        cell = cell.strip()
        if not cell:
            continue
        if not name:
            reasons.append(f"a value in column {column}, which has no name in the header")
        elif name not in FIELDS:
            fields[name] = cell  # reported as an unknown column by _make_item
        elif name in INT_PARAMETERS:
            if _INTEGER.fullmatch(cell):
                fields[name] = int(cell)
            else:
                reasons.append(f"{name} must be an integer, got {cell!r}")
        elif name == "images":
            fields[name] = [path.strip() for path in _CSV_IMAGE_SEPARATORS.split(cell) if path.strip()]
        elif name in JSON_PARAMETERS:
            try:
                fields[name] = json.loads(cell)
            except (ValueError, RecursionError):
                reasons.append(f"{name} must be a JSON object, got {cell[:40]!r}")
        else:
            fields[name] = cell
    return _make_item(fields, line, "column", reasons)


def _parse_text(lines: Iterable[str]) -> Iterator[Entry]:
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if text and not text.startswith("#"):
            yield _make_item({"prompt": text}, number, "key")


def _make_item(
    fields: Mapping[Any, Any], line: int, noun: str, reasons: Optional[List[str]] = None, where: Optional[str] = None
) -> Entry:
    """An item from one line's fields, or a problem listing everything wrong with them.

    :param where: how the problem message names the entry (default ``"line N"``).
    """
    reasons = list(reasons or [])
    for key in fields:
        if key not in FIELDS:
            reasons.append(_unknown(noun, key))

    prompt = fields.get("prompt")
    if prompt is None:
        reasons.append("missing prompt")
    elif not isinstance(prompt, str):
        reasons.append(f"prompt must be a string, not {_json_type(prompt)}")
    elif not prompt.strip():
        reasons.append("prompt is empty")

    given_id = fields.get("id")
    if given_id is not None:
        trouble = _id_trouble(given_id)
        if trouble:
            reasons.append(trouble)

    images: Tuple[str, ...] = ()
    raw_images = fields.get("images")
    if isinstance(raw_images, str):
        raw_images = [raw_images]
    if isinstance(raw_images, list):
        if not raw_images:
            reasons.append("images is empty; leave it out for a generation")
        for index, path in enumerate(raw_images):
            if not isinstance(path, str):
                reasons.append(f"images[{index}] must be a path string, not {_json_type(path)}")
            elif not path.strip():
                reasons.append(f"images[{index}] is an empty path")
        images = tuple(path for path in raw_images if isinstance(path, str))
    elif raw_images is not None:
        reasons.append(f"images must be a path or a list of paths, not {_json_type(raw_images)}")

    mask = fields.get("mask")
    if mask is not None:
        if not isinstance(mask, str):
            reasons.append(f"mask must be a path string, not {_json_type(mask)}")
        elif not mask.strip():
            reasons.append("mask is an empty path")
        elif raw_images is None:
            # A mask only means something for an edit; without images the
            # item would silently become a generation.
            reasons.append("mask given without images")

    extra_body = fields.get("extra_body")
    if extra_body is not None and not isinstance(extra_body, dict):
        reasons.append(f"extra_body must be an object, not {_json_type(extra_body)}")

    if reasons:
        return _problem(line, *reasons, where=where)
    # JSON null means "not given", as None does for the provider's keyword arguments.
    params = {
        key: value for key, value in fields.items() if (key in PARAMETERS or key == "extra_body") and value is not None
    }
    text = cast(str, prompt)
    ident = given_id if given_id is not None else item_id(text, params, images, mask)
    return BatchItem(ident, text, params, images, mask, line)


def _unknown(noun: str, key: Any) -> str:
    message = f"unknown {noun} {key!r}"
    close = difflib.get_close_matches(str(key).lower(), sorted(FIELDS), n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


def _id_trouble(value: Any) -> Optional[str]:
    """Why ``value`` cannot be an id (it names output files), or ``None``."""
    if not isinstance(value, str):
        return f"id must be a string, not {_json_type(value)}"
    if not value:
        return "id is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"id is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed"
    if not _ID_CHARACTERS.fullmatch(value):
        bad = sorted({char for char in value if not _ID_CHARACTERS.fullmatch(char)})
        return "id {!r} contains {}; use only letters, digits, '-', '_' and '.'".format(
            value, ", ".join(repr(char) for char in bad)
        )
    if value.startswith("."):
        return f"id {value!r} starts with '.'"
    if value.split(".")[0].lower() in WINDOWS_RESERVED:
        return f"id {value!r} is a reserved device name on Windows"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def refuse_duplicates(items: Sequence[BatchItem], source: str = "<input>") -> None:
    """Refuse items that share an id, or whose output files would share a name.

    :raises DuplicateIdError: naming the ids and their lines.
    """
    # Folded to lower case: "Fox" and "fox" are one file on Windows and macOS.
    lines: Dict[str, List[int]] = {}
    spellings: Dict[str, List[str]] = {}
    for item in items:
        key = item.id.lower()
        lines.setdefault(key, []).append(item.line)
        if item.id not in spellings.setdefault(key, []):
            spellings[key].append(item.id)
    repeated = {spellings[key][0]: found for key, found in lines.items() if len(found) > 1}
    if repeated:
        raise DuplicateIdError(
            repeated, source, {spellings[key][0]: spellings[key] for key, found in lines.items() if len(found) > 1}
        )
    # Distinct ids can still name one file: "cat" and "cat.png" both save as
    # cat.png, and "fox" with n=2 writes fox-1.png, which is item "fox-1"'s file.
    owners: Dict[str, BatchItem] = {}
    clashes: Dict[str, List[int]] = {}
    for item in items:
        for stem in output_stems(item):
            owner = owners.setdefault(stem, item)
            if owner is not item:
                label = f"{owner.id!r} and {item.id!r} (both would write {stem!r})"
                clashes.setdefault(label, [owner.line, item.line])
    if clashes:
        raise DuplicateIdError(clashes, source, colliding_files=True)


def output_stems(item: BatchItem) -> List[str]:
    """The file names (without extension, case-folded) an item's images are saved under."""
    base = item.id
    suffix = os.path.splitext(base)[1].lower()
    if suffix in IMAGE_SUFFIXES:  # saving replaces an image suffix with the one the bytes call for
        base = base[: -len(suffix)]
    return [name.lower() for name in image_names(base, expected_images(item.params))]
