"""
imageprovider.testing._cli
~~~~~~~~~~~~~~~~~~~~~~~~~~

Runs :class:`FakeImagesServer` in the foreground, printing its base URL, for
``python -m imageprovider.testing`` and ``imageprovider serve-fake``.
"""

import argparse
import datetime
import sys
from typing import List, Optional, Sequence, Tuple, Union

from ._faults import KINDS, parse_fault
from ._server import FAKE_API_KEY, FakeImagesServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The stand-in's options, shared with ``imageprovider serve-fake``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", default=FAKE_API_KEY, help="bearer token to accept (default %(default)s)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="script a fault for the next request(s), e.g. '429,retry-after=1,times=2'; "
        "kinds: a status code, moderation, " + ", ".join(k for k in KINDS if k != "status"),
    )
    parser.add_argument("--rpm", type=int, help="requests per minute before real 429s")
    parser.add_argument("--ipm", type=int, help="images per minute before real 429s")
    parser.add_argument("--tpm", type=int, help="tokens per minute before real 429s")
    parser.add_argument("--latency", default="0", help="seconds per image, or LOW-HIGH for a random spread")
    parser.add_argument(
        "--detail-bits",
        type=int,
        default=2,
        choices=range(9),
        help="noise bits per colour channel; sets PNG payload size (default 2)",
    )
    parser.add_argument("--url-ttl", type=float, default=3600.0, help="seconds URL results stay valid")
    parser.add_argument("--batch-seconds", type=float, default=2.0, help="seconds until a batch completes")
    parser.add_argument(
        "--today",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the stand-in's date, for model shutdowns (default: today's UTC date); "
        "e.g. 2026-01-01 to serve models shut down since",
    )


def _day(text: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _latency(text: str) -> Union[float, Tuple[float, float]]:
    low, sep, high = text.partition("-")
    return (float(low), float(high)) if sep else float(low)


def build_server(args: argparse.Namespace) -> FakeImagesServer:
    """A server configured from parsed arguments (faults already scripted)."""
    server = FakeImagesServer(
        args.host,
        args.port,
        api_key=args.api_key,
        requests_per_minute=args.rpm,
        images_per_minute=args.ipm,
        tokens_per_minute=args.tpm,
        latency=_latency(args.latency),
        detail_bits=args.detail_bits,
        url_ttl=args.url_ttl,
        batch_completion_seconds=args.batch_seconds,
        today=getattr(args, "today", None),
    )
    for spec in args.fault:
        server.add_fault(parse_fault(spec))
    return server


def serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; returns the exit status."""
    try:
        server = build_server(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(server.base_url, flush=True)
    print(f"API key: {server.api_key}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m imageprovider.testing") -> int:
    """Entry point of ``python -m imageprovider.testing`` (and ``imageprovider serve-fake``)."""
    parser = argparse.ArgumentParser(prog=prog, description="Run a local stand-in for OpenAI's images API.")
    add_arguments(parser)
    return serve(parser.parse_args(argv))


__all__: List[str] = ["add_arguments", "build_server", "main", "serve"]
