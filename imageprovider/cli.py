"""
imageprovider.cli
~~~~~~~~~~~~~~~~~

The ``imageprovider`` command (also ``python -m imageprovider``): ``generate``,
``edit``, ``vary``, ``batch``, ``models`` and ``serve-fake``. Options mirror
the API's parameter names; ``--extra KEY=VALUE`` sends any other field. Errors print one line on stderr naming the error class; the exit
status tells what kind of failure it was (see :data:`EXIT_CODES`).
"""

import argparse
import contextlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import requests

from . import _multipart, _saving
from .__version__ import __version__
from ._files import ensure_folder
from ._inputs import image_data_url
from ._progress import Progress
from .exceptions import (
    APIConnectionError,
    ConfigurationError,
    ImageProviderError,
    ImageProviderWarning,
    RequestValidationError,
    ResponseValidationError,
)
from .model_specs import MASK_MAX_BYTES
from .provider import EDIT_PARAMETERS, GENERATION_PARAMETERS, VARIATION_PARAMETERS, OpenAIImageProvider
from .results import ImageResponse
from .streaming import Completed, ImageStream, PartialImage

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_API_ERROR = 3
EXIT_CONNECTION = 4
EXIT_RESPONSE = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

#: Exit status -> meaning; printed by ``--help`` and listed in the README.
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_USAGE: "usage or validation error (bad option, parameter, input file, configuration; existing output file)",
    EXIT_API_ERROR: "the API refused the request (an HTTP error status, moderation, expired image URL)",
    EXIT_CONNECTION: "no usable response: connection failed, timed out, or was cut off",
    EXIT_RESPONSE: "the response could not be used (not JSON, or not the expected shape)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_TERMINATED: "terminated (SIGTERM, as sent by timeout, systemd or Kubernetes)",
}

#: Credential headers shown as [REDACTED] by --dry-run.
_SECRET_HEADERS = ("authorization", "api-key")


# -- the parser -------------------------------------------------------------------


def _exit_codes_text() -> str:
    return "exit status:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


def _add_common(
    parser: argparse.ArgumentParser, *, model_default: Optional[str] = None, safety_identifier: bool = True
) -> None:
    api = parser.add_argument_group("request")
    api.add_argument(
        "--model",
        default=model_default,
        help="model name (default: {})".format(model_default or "the configured default model"),
    )
    api.add_argument("--n", type=int, help="number of images, 1-10")
    api.add_argument("--size", help="e.g. 1024x1024, 1536x1024, auto, or WIDTHxHEIGHT (gpt-image-2)")
    api.add_argument("--user", help="end-user id for abuse monitoring")
    if safety_identifier:
        api.add_argument("--safety-identifier", help="a stable id of your end user, for OpenAI's abuse monitoring")
    api.add_argument("--timeout", type=float, help="read timeout in seconds (default 600)")
    _add_extra_options(api)
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        help="a file for one image, a folder for several (default: the current folder, files named after the prompt)",
    )
    out.add_argument("--overwrite", action="store_true", help="replace existing files")
    out.add_argument("--metadata", action="store_true", help="write a .json sidecar next to each image")
    out.add_argument("--json", action="store_true", help="print one JSON document describing the result on stdout")
    run = parser.add_argument_group("running")
    run.add_argument(
        "--fake", action="store_true", help="run against an in-process stand-in server: no key, no network, real images"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the HTTP request that would be sent (key redacted) and exit, sending nothing",
    )
    _add_provider_options(run)
    run.add_argument("--verbose", action="store_true", help="log each request to stderr")
    run.add_argument("--debug", action="store_true", help="log everything, and show tracebacks on errors")


def _add_provider_options(group: Any) -> None:
    group.add_argument(
        "--deadline",
        type=float,
        help="seconds a whole call may take, retries included (default 900; --timeout bounds each wait)",
    )
    group.add_argument(
        "--models-file", help="a JSON overlay of model table entries (default: $IMAGEPROVIDER_MODELS, the config file)"
    )
    group.add_argument(
        "--no-model-rules",
        dest="check_model_rules",
        action="store_false",
        help="skip the model table's checks and shutdown dates (for compatible servers)",
    )


def _add_extra_options(group: Any) -> None:
    group.add_argument(
        "--extra",
        action="append",
        metavar="KEY=VALUE",
        help="another request field, sent as given (VALUE is read as JSON when it parses, else as text); repeatable",
    )
    group.add_argument("--extra-json", metavar="JSON", help="more request fields, as one JSON object")


def _add_image_options(parser: argparse.ArgumentParser, *, generate: bool) -> None:
    # Value lists change with every model: the help gives examples, `imageprovider models` and the README the table.
    group = parser.add_argument_group("image options (allowed values depend on the model: see 'imageprovider models')")
    group.add_argument("--quality", help="e.g. low, medium, high, xhigh, max, auto; standard, hd (DALL-E)")
    group.add_argument("--background", help="transparent, opaque or auto")
    group.add_argument("--output-format", help="e.g. png, jpeg, webp, gif, svg")
    group.add_argument("--output-compression", type=int, help="0-100, for jpeg and webp")
    group.add_argument("--response-format", help="url or b64_json (DALL-E)")
    group.add_argument("--complexity", help="e.g. low, medium, high (gpt-image-2.6)")
    group.add_argument("--frame-count", type=int, help="frames of an animated GIF (--output-format gif)")
    group.add_argument("--frame-duration-ms", type=int, help="milliseconds each GIF frame shows")
    if generate:
        group.add_argument("--moderation", help="low or auto")
        group.add_argument("--style", help="vivid or natural (dall-e-3)")
        group.add_argument("--svg-model", help="the model that draws the SVG (--output-format svg)")
        group.add_argument("--svg-effort", help="its reasoning effort, e.g. low, medium, high")
    group.add_argument("--stream", action="store_true", help="stream, also saving the partial images")
    group.add_argument("--partial-images", type=int, help="partial images to stream, e.g. 0-3 (with --stream)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``imageprovider`` command."""
    parser = argparse.ArgumentParser(
        prog="imageprovider",
        description="Generate and edit images with OpenAI's image API.",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="imageprovider " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    generate = commands.add_parser(
        "generate",
        help="create images from a prompt",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument("prompt", help="what to draw")
    _add_common(generate)
    _add_image_options(generate, generate=True)

    edit = commands.add_parser(
        "edit",
        help="edit or extend images following a prompt",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    edit.add_argument("prompt", help="what to change")
    edit.add_argument("images", nargs="+", help="input images (PNG, JPEG or WEBP), up to 16")
    edit.add_argument("--mask", help="PNG with an alpha channel; transparent pixels mark where to edit")
    edit.add_argument(
        "--markup",
        help="a transparent PNG drawn over the first image, the same size (gpt-image-2.6); sends the edit as JSON, "
        "the images as data URLs",
    )
    edit.add_argument("--input-fidelity", help="high or low (gpt-image-1 and gpt-image-1.5)")
    _add_common(edit)
    _add_image_options(edit, generate=False)

    vary = commands.add_parser(
        "vary",
        help="variations of one square PNG (dall-e-2; compatible servers)",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    vary.add_argument("image", help="a square PNG under 4 MB")
    _add_common(vary, model_default="dall-e-2", safety_identifier=False)
    vary.add_argument("--response-format", help="url or b64_json")

    batch = commands.add_parser(
        "batch",
        help="many prompts from a file, resumably (online or Batch API)",
        epilog=_exit_codes_text() + "\n  (batch: 3 also when any item failed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument(
        "file", help="JSONL (prompt + parameters per line), CSV (a prompt column) or text (one prompt per line)"
    )
    batch.add_argument("-o", "--output", required=True, help="output folder: images, manifest.jsonl, summary.json")
    batch.add_argument(
        "--format", choices=("jsonl", "csv", "text"), help="input format (default: from the file's extension)"
    )
    batch.add_argument(
        "--via",
        choices=("online", "batch-api"),
        default="online",
        help="online (default): live requests at the rate limit; batch-api: OpenAI's Batch API",
    )
    batch.add_argument("--concurrency", type=int, default=4, help="worker threads (online; default 4)")
    batch.add_argument("--rpm", type=float, help="requests per minute to stay under (online)")
    batch.add_argument("--ipm", type=float, help="images per minute to stay under (online)")
    batch.add_argument(
        "--retry-failed",
        dest="retry_failed",
        action="store_true",
        default=True,
        help="retry items that failed in an earlier run (default)",
    )
    batch.add_argument(
        "--no-retry-failed", dest="retry_failed", action="store_false", help="leave earlier failures alone"
    )
    batch.add_argument("--max-attempts", type=int, default=3, help="attempts per item across runs (default 3)")
    batch.add_argument("--wait", action="store_true", help="batch-api: wait for the batches and collect them")
    batch.add_argument(
        "--max-batch-requests",
        type=int,
        default=50_000,
        help="batch-api: requests per submitted batch (the API allows 50,000)",
    )
    batch.add_argument("--metadata", action="store_true", help="write a .json sidecar next to each image")
    batch.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    batch.add_argument("--quiet", action="store_true", help="no progress on stderr")
    batch.add_argument("--fake", action="store_true", help="run against an in-process stand-in server")
    batch.add_argument("--verbose", action="store_true", help="log each request to stderr")
    batch.add_argument("--debug", action="store_true", help="log everything, and show tracebacks on errors")
    batch.add_argument("--timeout", type=float, help="read timeout in seconds (default 600)")
    _add_provider_options(batch)

    models = commands.add_parser(
        "models",
        help="list the models the library knows, their status and shutdown dates",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_argument(
        "--refresh", action="store_true", help="ask the API (GET /v1/models) and print what differs from the table"
    )
    models.add_argument("--write", metavar="FILE", help="with --refresh: write the differences as an overlay file")
    models.add_argument("--json", action="store_true", help="print JSON on stdout")
    models.add_argument("--models-file", help="a JSON overlay of model table entries (default: $IMAGEPROVIDER_MODELS)")
    models.add_argument("--fake", action="store_true", help="with --refresh: ask the in-process stand-in server")
    models.add_argument("--verbose", action="store_true", help="log each request to stderr")
    models.add_argument("--debug", action="store_true", help="log everything, and show tracebacks on errors")

    # Its options are the stand-in's own, parsed by its module, so that nothing of the
    # stand-in is imported unless it is used.
    serve_fake = commands.add_parser(
        "serve-fake", help="run the stand-in server in the foreground (see: serve-fake --help)", add_help=False
    )
    serve_fake.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


# -- running -------------------------------------------------------------------------


_PARAMS = {
    "generate": GENERATION_PARAMETERS,
    "edit": ("mask", *EDIT_PARAMETERS),
    "vary": VARIATION_PARAMETERS,
}


def _call_params(args: argparse.Namespace) -> Dict[str, Any]:
    params = {name: getattr(args, name, None) for name in _PARAMS[args.command]}
    params = {name: value for name, value in params.items() if value is not None}
    svg = _svg_option(args)
    if svg is not None:
        params["svg"] = svg
    extra = extra_body_option(getattr(args, "extra", None), getattr(args, "extra_json", None))
    if extra:
        params["extra_body"] = extra
    if args.timeout is not None:
        params["timeout"] = args.timeout
    return params


def _svg_option(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    model, effort = getattr(args, "svg_model", None), getattr(args, "svg_effort", None)
    if model is None and effort is None:
        return None
    svg: Dict[str, Any] = {} if model is None else {"model": model}
    if effort is not None:
        svg["reasoning"] = {"effort": effort}
    return svg


def extra_body_option(pairs: Optional[Sequence[str]], document: Optional[str]) -> Dict[str, Any]:
    """``--extra KEY=VALUE`` (VALUE read as JSON when it parses, else as text) and ``--extra-json``, as ``extra_body``.

    :raises RequestValidationError: (``param="extra"``) a malformed pair, JSON that is not an object, or a key given twice.
    """
    extra: Dict[str, Any] = {}
    if document is not None:
        try:
            parsed = json.loads(document)
        except (ValueError, RecursionError) as exc:
            raise RequestValidationError(f"--extra-json is not valid JSON: {str(exc)[:120]}", param="extra") from None
        if not isinstance(parsed, dict):
            raise RequestValidationError("--extra-json must be a JSON object", param="extra")
        extra.update(parsed)
    for pair in pairs or ():
        key, equals, text = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise RequestValidationError(f"--extra takes KEY=VALUE, not {pair!r}", param="extra")
        if key in extra:
            raise RequestValidationError(f"--extra: {key!r} is given more than once", param="extra")
        try:
            extra[key] = json.loads(text)
        except (ValueError, RecursionError):
            extra[key] = text
    return extra


def _deadline_option(args: argparse.Namespace) -> Dict[str, Any]:
    deadline = getattr(args, "deadline", None)
    return {} if deadline is None else {"deadline": deadline}


@contextlib.contextmanager
def _provider(args: argparse.Namespace) -> Iterator[OpenAIImageProvider]:
    options: Dict[str, Any] = {
        "models_file": getattr(args, "models_file", None),
        "check_model_rules": getattr(args, "check_model_rules", True),
        **_deadline_option(args),
    }
    with contextlib.ExitStack() as stack:
        if args.fake:
            from .testing import FakeImagesServer  # the stand-in is loaded only when asked for

            server = stack.enter_context(FakeImagesServer())
            provider = stack.enter_context(
                OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url, **options)
            )
        elif getattr(args, "dry_run", False):
            try:
                provider = stack.enter_context(OpenAIImageProvider(**options))
            except ConfigurationError as exc:
                if "API key" not in str(exc):
                    raise
                print(f"note: {exc} The request below shows a placeholder key.", file=sys.stderr)
                provider = stack.enter_context(OpenAIImageProvider(api_key="sk-placeholder-for-dry-run", **options))
        else:
            provider = stack.enter_context(OpenAIImageProvider(**options))
        yield provider


def _refuse_existing_targets(args: argparse.Namespace) -> None:
    """Refuse before sending, not after paying: the output names are known up front."""
    if args.overwrite or args.dry_run:
        return
    count = args.n or 1
    folder, single = _output(args, count)
    _saving.refuse_existing_targets(single, folder or Path("."), _saving.request_stem(vars(args)), count, args.metadata)


#: The provider method behind each kind of request.
_METHODS = {
    "generate": "generate_image",
    "stream": "stream_image",
    "edit": "edit_image",
    "stream_edit": "stream_edit",
    "edit_refs": "edit_image_from_refs",
    "variation": "create_variation",
}
#: Keywords of those methods that are not part of the request.
_CALL_OPTIONS = ("timeout", "save_to", "overwrite", "metadata")


def _refuse_unaccepted(method: Callable[..., Any], params: Mapping[str, Any], how: str) -> None:
    """Refuse options the chosen call does not take, rather than drop them without a word."""
    accepted = inspect.signature(method).parameters
    for name in params:
        if name not in accepted:
            raise RequestValidationError(f"Parameter {name!r} cannot be used {how}", param=name)


def _plan(args: argparse.Namespace) -> Tuple[str, Dict[str, Any]]:
    """The kind of request the command line makes, and the keywords of its call."""
    params = _call_params(args)
    stream = getattr(args, "stream", False)
    if args.command == "vary":
        return "variation", dict(params, image=args.image)
    if not stream and args.partial_images is not None:
        raise RequestValidationError("Parameter 'partial_images' needs --stream", param="partial_images")
    if stream:
        params["partial_images"] = args.partial_images
    # The prompt first: the API's fields go on the wire in the order they are given.
    if args.command == "generate":
        kind = "stream" if stream else "generate"
        params = {"prompt": args.prompt, **params}
    elif args.markup is not None:
        if stream:
            raise RequestValidationError("Parameter 'markup' cannot be used with --stream", param="markup")
        kind = "edit_refs"
        params = {"prompt": args.prompt, "images": _refs(args, params), **params}
    else:
        kind = "stream_edit" if stream else "edit"
        params = {"prompt": args.prompt, "images": args.images, **params}
    how = {"stream": "with --stream", "stream_edit": "with --stream", "edit_refs": "with --markup (a JSON edit)"}
    _refuse_unaccepted(getattr(OpenAIImageProvider, _METHODS[kind]), params, how.get(kind, "here"))
    return kind, params


def _refs(args: argparse.Namespace, params: Dict[str, Any]) -> List[Dict[str, str]]:
    """``edit --markup``: the edit goes as JSON, its local images as data URLs."""
    params["markup"] = {"image_url": image_data_url(args.markup, MASK_MAX_BYTES, "markup")}
    if params.get("mask") is not None:
        params["mask"] = {"image_url": image_data_url(params["mask"], MASK_MAX_BYTES, "mask")}
    return [{"image_url": image_data_url(path, None, "images")} for path in args.images]


def _run(args: argparse.Namespace, progress: Progress) -> Dict[str, Any]:
    _refuse_existing_targets(args)
    kind, params = _plan(args)
    with _provider(args) as provider:
        if args.dry_run:
            request = {key: value for key, value in params.items() if key not in _CALL_OPTIONS}
            _show_request(provider.http_request(provider.prepare_request(kind, **request)), sys.stdout, args.json)
            return {}
        provider.hooks.register("retry", progress.retry)
        call = getattr(provider, _METHODS[kind])
        if kind in ("stream", "stream_edit"):
            return _save_stream(args, call(**params), progress)
        _save_on_arrival(args, params)
        return _save(args, call(**params))


def _save_on_arrival(args: argparse.Namespace, params: Dict[str, Any]) -> None:
    """Into a folder (several images, or ``-o DIR/``), images are written as they arrive, never held whole."""
    folder, single = _output(args, args.n or 1)
    if single is None and not args.dry_run:
        params.update(save_to=folder or Path("."), overwrite=args.overwrite, metadata=args.metadata)


def _output(args: argparse.Namespace, count: int) -> Tuple[Optional[Path], Optional[Path]]:
    """(folder, single file) for ``-o``: a file for one image, a folder for several."""
    if args.output is None:
        return Path("."), None
    target = Path(args.output)
    if count > 1 or target.is_dir() or args.output.endswith((os.sep, "/")):
        return target, None
    return None, target


def _save(args: argparse.Namespace, response: ImageResponse) -> Dict[str, Any]:
    folder, single = _output(args, len(response.images))
    if all(image.path is not None for image in response.images):  # saved on arrival (save_to)
        files = [image.path for image in response.images if image.path is not None]
    elif single is not None:
        files = [response.images[0].save(single, overwrite=args.overwrite, metadata=args.metadata)]
    else:
        files = response.save_all(folder or ".", overwrite=args.overwrite, metadata=args.metadata)
    return {
        "files": [str(path) for path in files],
        "partial_files": [],
        "model": response.request.get("model"),
        "created": response.created,
        "request_id": response.request_id,
        "usage": response.fields.get("usage"),
        "revised_prompts": [image.revised_prompt for image in response.images],
        "size": response.size,
    }


def _save_stream(args: argparse.Namespace, stream: ImageStream, progress: Progress) -> Dict[str, Any]:
    expected = args.n or 1
    folder, single = _output(args, expected)
    base = single.with_suffix("") if single is not None else (folder or Path(".")) / _saving.safe_stem(args.prompt)
    ensure_folder(base.parent)
    partial_files: List[str] = []
    files: List[str] = []
    usage = None
    with stream:
        for event in stream:
            if isinstance(event, PartialImage):
                progress.partial(event.index)
                name = _saving.partial_name(base.name, stream.partial_count)
                partial_files.append(str(event.image.save(base.parent / name, overwrite=args.overwrite)))
            elif isinstance(event, Completed):
                name = _saving.image_name(base.name, expected, len(stream.completed))
                files.append(
                    str(event.image.save(base.parent / name, overwrite=args.overwrite, metadata=args.metadata))
                )
                usage = event.usage
    last = stream.completed[-1] if stream.completed else None
    return {
        "files": files,
        "partial_files": partial_files,
        "model": stream.request.get("model"),
        "created": last.created_at if last else None,
        "request_id": stream.request_id,
        "usage": None if usage is None else _usage_dict(usage),
        "revised_prompts": [None] * len(files),
        "size": last.size if last else stream.request.get("size"),
    }


def _usage_dict(usage: Any) -> Dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


# -- dry run -----------------------------------------------------------------------


#: Data URLs (images in a JSON edit) longer than this are shown by their type and length.
_SHOWN_DATA_URL_CHARS = 80


def _shorten_data_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shorten_data_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten_data_urls(item) for item in value]
    if isinstance(value, str) and value.startswith("data:") and len(value) > _SHOWN_DATA_URL_CHARS:
        return "{},... ({:,} characters)".format(value.split(",", 1)[0], len(value))
    return value


def _describe_request(request: requests.PreparedRequest) -> Dict[str, Any]:
    """What --dry-run shows: method, URL, headers (secrets redacted) and the body, read back."""
    headers = {}
    for name, value in request.headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] + " " if " " in value else ""
            value = scheme + "[REDACTED]"
        headers[name] = value
    described: Dict[str, Any] = {"method": request.method, "url": request.url, "headers": headers}
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("application/json"):
        described["body"] = _shorten_data_urls(json.loads(body))
    elif content_type.startswith("multipart/form-data"):
        described["parts"] = [
            {"name": part.name, "value": part.payload.decode("utf-8", "replace")}
            if part.filename is None
            else {
                "name": part.name,
                "filename": part.filename,
                "content_type": part.content_type,
                "bytes": len(part.payload),
            }
            for part in _multipart.parse(content_type, body)
        ]
    return described


def _show_request(request: requests.PreparedRequest, out: IO[str], as_json: bool = False) -> None:
    described = _describe_request(request)
    if as_json:
        print(json.dumps(described, indent=2, ensure_ascii=False), file=out)
        return
    print(f"{described['method']} {described['url']}", file=out)
    for name, value in described["headers"].items():
        print(f"{name}: {value}", file=out)
    print(file=out)
    if "body" in described:
        print(json.dumps(described["body"], indent=2, ensure_ascii=False), file=out)
    for part in described.get("parts", ()):
        if "filename" not in part:
            print("part {}: {}".format(part["name"], part["value"]), file=out)
        else:
            print(
                "part {}: file {!r}, {}, {:,} bytes".format(
                    part["name"], part["filename"], part["content_type"], part["bytes"]
                ),
                file=out,
            )


# -- main ----------------------------------------------------------------------------


@contextlib.contextmanager
def _logging_to_stderr(args: argparse.Namespace) -> Iterator[None]:
    """With ``--verbose`` or ``--debug``, the library's log records on stderr for this command only:
    ``main()`` called in-process (a test, a script) leaves the logger as it found it."""
    if not (args.verbose or args.debug):
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if args.debug else logging.INFO)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("imageprovider")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if args.debug else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _exit_code(error: BaseException) -> int:
    # ValueError covers ConfigurationError, RequestValidationError and unreadable
    # input files; OSError here is local: an output folder that cannot be written.
    if isinstance(error, (ValueError, OSError)):
        return EXIT_USAGE
    if isinstance(error, APIConnectionError):
        return EXIT_CONNECTION
    if isinstance(error, ResponseValidationError):
        return EXIT_RESPONSE
    return EXIT_API_ERROR


def _batch(args: argparse.Namespace) -> int:
    from .batch import BatchProgress, run_batch, run_batch_api

    interactive = sys.stderr.isatty() and not (args.quiet or args.verbose or args.debug)

    def show(snapshot: BatchProgress) -> None:
        if interactive:
            eta = "" if snapshot.eta_seconds is None else f", ETA {snapshot.eta_seconds:.0f}s"
            waiting = (
                "" if snapshot.waiting_seconds <= 0 else f", waiting {snapshot.waiting_seconds:.1f}s for the rate limit"
            )
            sys.stderr.write(
                f"\r\033[K{snapshot.done}/{snapshot.total} done, {snapshot.failed} failed, {snapshot.images_per_minute:.1f} images/min{eta}{waiting}"
            )
            sys.stderr.flush()

    def show_batches(entries: List[Dict[str, Any]]) -> None:
        if interactive:
            counts = [entry.get("request_counts") or {} for entry in entries]
            sys.stderr.write(
                "\r\033[K{} batch(es): {} of {} requests finished".format(
                    len(entries),
                    sum(c.get("completed", 0) + c.get("failed", 0) for c in counts),
                    sum(c.get("total", 0) for c in counts),
                )
            )
            sys.stderr.flush()

    options: Dict[str, Any] = {
        "timeout": args.timeout,
        "models_file": args.models_file,
        "check_model_rules": args.check_model_rules,
        **_deadline_option(args),
    }
    with contextlib.ExitStack() as stack:
        if args.fake:
            from .testing import FakeImagesServer

            server = stack.enter_context(FakeImagesServer(batch_completion_seconds=0.5))
            provider = stack.enter_context(
                OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url, **options)
            )
        else:
            provider = stack.enter_context(OpenAIImageProvider(**options))
        if args.via == "batch-api":
            summary = run_batch_api(
                args.file,
                args.output,
                provider=provider,
                wait=args.wait,
                retry_failed=args.retry_failed,
                max_attempts=args.max_attempts,
                metadata=args.metadata,
                input_format=args.format,
                progress=show_batches,
                poll_interval=0.5 if args.fake else 5.0,
                max_requests=args.max_batch_requests,
            )
        else:
            summary = run_batch(
                args.file,
                args.output,
                provider=provider,
                concurrency=args.concurrency,
                requests_per_minute=args.rpm,
                images_per_minute=args.ipm,
                retry_failed=args.retry_failed,
                max_attempts=args.max_attempts,
                metadata=args.metadata,
                input_format=args.format,
                progress=show,
                notify=_notice,
            )
    if interactive:
        sys.stderr.write("\r\033[K")
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    else:
        print(
            f"{summary.total} items: {summary.done} done, {summary.failed} failed, {summary.skipped} already done, {summary.pending} pending; {summary.images} images, {summary.tokens} tokens, {summary.elapsed:.1f}s "
            f"({summary.images_per_minute:.1f} images/min)"
        )
        for entry in summary.batches:
            print(
                "batch {} ({}): {} items, status {}".format(
                    entry.get("batch_id"), entry.get("input_file_id"), len(entry.get("ids", [])), entry.get("status")
                )
            )
        for problem in summary.problems:
            print("skipped {}".format(problem["message"]), file=sys.stderr)
    if summary.interrupted:
        return EXIT_TERMINATED if _TERMINATED.is_set() else EXIT_INTERRUPTED
    return EXIT_API_ERROR if summary.failed or summary.problems else EXIT_OK


def _notice(message: str) -> None:
    """A line on stderr that a batch's progress line does not overwrite."""
    sys.stderr.write("\r\033[K" if sys.stderr.isatty() else "")
    print(f"imageprovider: {message}", file=sys.stderr, flush=True)


def _single(args: argparse.Namespace) -> int:
    interactive = sys.stderr.isatty() and not (args.verbose or args.debug) and not args.dry_run
    label = "Streaming" if getattr(args, "stream", False) else "Waiting for the image"
    with Progress(sys.stderr, interactive, label) as progress:
        summary = _run(args, progress)
    if args.dry_run:
        return EXIT_OK
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        for path in summary["files"]:
            print(path)
    return EXIT_OK


def _models(args: argparse.Namespace) -> int:
    from ._models_command import list_models, refresh_models

    if args.write is not None and not args.refresh:
        raise RequestValidationError("--write needs --refresh", param="write")
    if not args.refresh:
        return list_models(args, sys.stdout)
    with _provider(args) as provider:
        return refresh_models(args, provider, sys.stdout)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """The library's warnings as ``imageprovider: warning: ...`` lines; others as Python prints them."""
    shown = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if isinstance(category, type) and issubclass(category, ImageProviderWarning):
            print(f"imageprovider: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


#: Set when SIGTERM arrived during the running command (a batch catches the interrupt itself and says so in
#: its summary; this tells its exit status apart from Ctrl-C's).
_TERMINATED = threading.Event()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt: every clean-up that Ctrl-C runs (``.part`` files, a batch's manifest)
    runs for it too."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs in the main thread, SIGTERM raises :class:`_Terminated`; the previous handler is
    put back afterwards (``main()`` may be called in-process)."""

    def terminate(signum: int, frame: Any) -> None:
        _TERMINATED.set()
        raise _Terminated()

    _TERMINATED.clear()

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (see :data:`EXIT_CODES`)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve-fake"]:
        # The stand-in parses its own options; it is imported only when it is run.
        from .testing import _cli as stand_in

        return stand_in.main(arguments[1:], prog="imageprovider serve-fake")
    args = build_parser().parse_args(arguments)
    commands = {"batch": _batch, "models": _models}
    try:
        with _sigterm_as_interrupt(), _logging_to_stderr(args), _warnings_as_lines():
            return commands.get(args.command, _single)(args)
    except (ImageProviderError, OSError, ValueError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"imageprovider: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except _Terminated:
        print("imageprovider: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("imageprovider: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
