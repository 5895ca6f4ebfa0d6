"""
imageprovider.cli
~~~~~~~~~~~~~~~~~

The ``imageprovider`` command. Errors are printed as one line on stderr with
exit status 1 (the API or network failed) or 2 (bad input or configuration).
"""

import argparse
import contextlib
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from . import _files
from .__version__ import __version__
from .exceptions import ConfigurationError, ImageProviderError, RequestValidationError
from .provider import OpenAIImageProvider
from .results import ImageResponse
from .testing import _cli as _testing_cli
from .testing import FakeImagesServer

EXIT_API_ERROR = 1
EXIT_USAGE = 2

_GENERATION_OPTIONS = (
    ("--model", str, "model name (default: the configured default model)"),
    ("--n", int, "number of images, 1-10"),
    ("--size", str, "auto, 1024x1024, 1536x1024, 1024x1536, or WIDTHxHEIGHT (gpt-image-2)"),
    ("--quality", str, "low, medium, high, auto (GPT image); standard, hd (DALL-E)"),
    ("--background", str, "transparent, opaque or auto"),
    ("--output-format", str, "png, jpeg or webp"),
    ("--output-compression", int, "0-100, for jpeg and webp"),
    ("--moderation", str, "low or auto"),
    ("--style", str, "vivid or natural (dall-e-3)"),
    ("--response-format", str, "url or b64_json (DALL-E)"),
    ("--user", str, "end-user id for abuse monitoring"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``imageprovider`` command."""
    parser = argparse.ArgumentParser(prog="imageprovider", description="Generate images with OpenAI's image API.")
    parser.add_argument("--version", action="version", version="imageprovider " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    generate = commands.add_parser("generate", help="create images from a prompt")
    generate.add_argument("prompt", help="what to draw")
    for flag, kind, text in _GENERATION_OPTIONS:
        generate.add_argument(flag, type=kind, help=text)
    generate.add_argument("-o", "--output", help="file for one image; with several, a numbered suffix is added")
    generate.add_argument("--overwrite", action="store_true", help="replace existing files")
    generate.add_argument("--timeout", type=float, help="read timeout in seconds (default 600)")
    generate.add_argument("--verbose", action="store_true", help="log each request to stderr")
    generate.add_argument("--fake", action="store_true",
                          help="run against an in-process stand-in server: no key, no network, real images")
    serve_fake = commands.add_parser("serve-fake", help="run the stand-in server in the foreground")
    _testing_cli.add_arguments(serve_fake)
    return parser


def _output_paths(output: Optional[str], response: ImageResponse) -> List[str]:
    paths = []
    count = len(response.images)
    for image in response.images:
        extension = _files.EXTENSIONS.get(image.mime_type or "", ".bin")
        if output is None:
            paths.append("image-{}-{}{}".format(response.created, image.index + 1, extension))
            continue
        stem, given_extension = os.path.splitext(output)
        suffix = "-{}".format(image.index + 1) if count > 1 else ""
        paths.append("{}{}{}".format(stem, suffix, given_extension or extension))
    return paths


def _generate(args: argparse.Namespace) -> int:
    params: Dict[str, Any] = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in _GENERATION_OPTIONS}
    with contextlib.ExitStack() as stack:
        if args.fake:
            server = stack.enter_context(FakeImagesServer())
            provider = stack.enter_context(OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url))
        else:
            provider = stack.enter_context(OpenAIImageProvider())
        response = provider.generate_image(args.prompt, timeout=args.timeout, **params)
    for image, path in zip(response.images, _output_paths(args.output, response)):
        if image.data is None:
            print(image.url)
            continue
        _files.write_atomic(path, image.data, overwrite=args.overwrite)
        print(path)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "serve-fake":
        return _testing_cli.serve(args)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _generate(args)
    except (ConfigurationError, RequestValidationError, FileExistsError) as exc:
        print("imageprovider: error: {}".format(exc), file=sys.stderr)
        return EXIT_USAGE
    except ImageProviderError as exc:
        print("imageprovider: error: {}".format(exc), file=sys.stderr)
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        print("imageprovider: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
