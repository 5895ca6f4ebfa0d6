"""
Shared plumbing for the benchmark scripts in this folder.

* :class:`StandIn` runs :class:`imageprovider.testing.FakeImagesServer` in a
  child process (this file run with ``--serve``), so that the stand-in's work
  never counts in the client's ``time.process_time()`` or ``tracemalloc``
  figures, and never competes with the client for the GIL. The parent talks
  to it over the child's stdin/stdout, one JSON line each way: ``stats``
  (connections accepted, image requests, 429s answered), ``headers`` (the
  headers of the last request, key restored), ``drain`` (use up the simulated
  images-per-minute window, as a key that has just been busy would have).
* :func:`alternate` runs the compared variants A B A B ... after a warm-up and
  keeps every sample; :func:`median` summarises them.
* :func:`print_header`, :func:`print_table` and :class:`Targets` print the
  one table and the closing ``name: value (target)`` lines of each script.
  A missed target is printed ``MISSED``; it is never an error: the numbers are
  for people, and the exit status only says whether the script ran.
* :func:`parse_args` gives every script ``--quick`` (fewer runs, for CI),
  ``--runs N`` and ``--profile`` (cProfile, tracemalloc or import-time
  details, where the script has them).

Run the scripts with the interpreter whose installed ``imageprovider`` is to
be measured; the header names the file that was imported.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "API_KEY",
    "StandIn",
    "Targets",
    "alternate",
    "clean_env",
    "median",
    "parse_args",
    "print_header",
    "print_table",
    "run_count",
    "run_subprocess",
    "timed",
]

#: The key the stand-in accepts (the default of ``FakeImagesServer``).
API_KEY = "sk-fake-imageprovider-local"

Sample = Dict[str, Any]


# -- command line -----------------------------------------------------------------------------


def parse_args(
    description: str, extra: Optional[Callable[[argparse.ArgumentParser], object]] = None
) -> argparse.Namespace:
    """``--quick`` and ``--runs N`` for every script, plus the script's own options."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few runs: checks that the script works (CI)")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per variant (overrides the default)")
    parser.add_argument("--profile", action="store_true", help="also print profiles (where the script has them)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def run_count(args: argparse.Namespace, full: int, quick: int) -> int:
    """Runs per variant: ``--runs`` if given, else ``quick`` or ``full``."""
    if args.runs is not None:
        return max(1, args.runs)
    return quick if args.quick else full


def clean_env() -> Dict[str, str]:
    """The environment for child processes, without settings that would redirect a client."""
    env = dict(os.environ)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "IMAGEPROVIDER_MODEL"):
        env.pop(name, None)
    # Start-up is measured as users see it: with compiled bytecode cached (the
    # warm-up runs write it; pip writes it at install time).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# -- the stand-in in a child process ---------------------------------------------------------


class StandIn:
    """``FakeImagesServer`` in its own process.

    Usage::

        with StandIn(detail_bits=4) as server:
            ... OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) ...
            print(server.stats()["connections"])

    :param options: keyword arguments of ``FakeImagesServer`` (``detail_bits``,
        ``latency`` as a number or a ``[low, high]`` list, ``images_per_minute``...).
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.api_key = API_KEY
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            universal_newlines=True,
            env=clean_env(),
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        try:
            started = json.loads(line)
        except ValueError:
            started = {}
        if not str(started.get("base_url", "")).startswith("http://"):
            self._process.kill()
            raise RuntimeError(f"the stand-in did not start (said {line!r})")
        self.base_url: str = started["base_url"]
        #: Who turned Nagle's algorithm off on the stand-in's sockets (see :func:`_disable_nagle`).
        self.nodelay: str = started["nodelay"]
        global _NODELAY_NOTED
        if not _NODELAY_NOTED:
            print(f"stand-in: TCP_NODELAY {self.nodelay}\n", flush=True)
            _NODELAY_NOTED = True

    def _ask(self, command: str) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        with self._lock:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the stand-in exited (asked {command!r})")
        return json.loads(answer)

    def stats(self) -> Dict[str, int]:
        """``connections`` accepted, image ``requests`` received and ``rate_limited`` (429s sent) so far."""
        return self._ask("stats")  # type: ignore[no-any-return]  # replies come over a pipe, untyped

    def last_headers(self) -> Dict[str, str]:
        """The headers of the last request received, with the real key in ``Authorization``."""
        return self._ask("headers")  # type: ignore[no-any-return]  # replies come over a pipe, untyped

    def drain(self) -> Dict[str, Any]:
        """Use up the simulated images-per-minute window (a key that was busy a moment ago)."""
        return self._ask("drain")  # type: ignore[no-any-return]  # replies come over a pipe, untyped

    def close(self) -> None:
        """Stop the child (it exits when its stdin closes) and wait for it."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.close()
            except OSError:
                pass
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> "StandIn":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


_NODELAY_NOTED = False


def _disable_nagle() -> str:
    """Turn Nagle's algorithm off for the stand-in's connections, unless it already does.

    The stand-in writes a response's headers and its body in two writes; with
    Nagle on, the body waits for the client's delayed ACK of the headers, so
    every small response on a kept-alive connection takes ~40 ms more, which
    would swamp the per-call figures. ``disable_nagle_algorithm`` is the
    standard library's switch on the request handler class.
    """
    try:
        from imageprovider.testing import _server

        handler = _server._Handler
    except (ImportError, AttributeError):
        return "unknown (stand-in handler not found; left as it is)"
    if getattr(handler, "disable_nagle_algorithm", False):
        return "set by the stand-in itself"
    handler.disable_nagle_algorithm = True
    return "set by the benchmark (the stand-in leaves Nagle on: ~40 ms stalls per small response)"


def _serve(options_json: str) -> int:
    """The child side of :class:`StandIn`."""
    from imageprovider.testing import FakeImagesServer

    nodelay = _disable_nagle()
    options = json.loads(options_json)
    if isinstance(options.get("latency"), list):
        options["latency"] = tuple(options["latency"])
    server = FakeImagesServer(**options)
    counts = {"rate_limited": 0}
    limiter_acquire = server.limiter.acquire
    count_lock = threading.Lock()

    def counting_acquire(images: int, tokens: int = 0) -> Tuple[bool, Dict[str, str]]:
        # Every images request passes here once; a refusal is answered with a 429.
        allowed, headers = limiter_acquire(images, tokens)
        if not allowed:
            with count_lock:
                counts["rate_limited"] += 1
        return allowed, headers

    server.limiter.acquire = counting_acquire  # type: ignore[method-assign]  # counts 429s in the child
    server.start()
    print(json.dumps({"base_url": server.base_url, "nodelay": nodelay}), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                requests = [r for r in server.requests if "/images/" in r.path]
                answer: Any = {
                    "connections": server.connections_accepted,
                    "requests": len(requests),
                    "rate_limited": counts["rate_limited"],
                }
            elif command == "headers":
                recorded = server.requests
                answer = dict(recorded[-1].headers) if recorded else {}
                if "Authorization" in answer:
                    answer["Authorization"] = "Bearer " + server.api_key
            elif command == "drain":
                # The window starts full; take a whole minute's images at once.
                capacity = options.get("images_per_minute") or 10_000
                allowed, _ = limiter_acquire(capacity, 0)
                answer = {"drained": allowed}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        server.stop()
    return 0


# -- measuring ------------------------------------------------------------------------------


def alternate(
    variants: Sequence[Tuple[str, Callable[[], Sample]]], runs: int, warmup: int = 1
) -> Dict[str, List[Sample]]:
    """Run each variant ``warmup`` times (discarded), then ``runs`` rounds of A B A B ...

    Each variant returns one sample (a dict of named measurements); the
    result maps each variant's name to its samples, in order.
    """
    for _ in range(warmup):
        for _, run in variants:
            run()
    samples: Dict[str, List[Sample]] = {name: [] for name, _ in variants}
    for _ in range(runs):
        for name, run in variants:
            samples[name].append(run())
    return samples


def median(samples: Sequence[Sample], key: str) -> float:
    """The median of one measurement over samples."""
    return float(statistics.median(sample[key] for sample in samples))


def timed(call: Callable[[], Any]) -> Sample:
    """Wall (``perf_counter``) and CPU (``process_time``) seconds of ``call()``, this process only."""
    cpu = time.process_time()
    wall = time.perf_counter()
    call()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def run_subprocess(argv: Sequence[str], cwd: str, env: Optional[Dict[str, str]] = None) -> Sample:
    """Wall seconds of one child process; raises if it fails."""
    started = time.perf_counter()
    completed = subprocess.run(list(argv), cwd=cwd, env=env or clean_env(), capture_output=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            "{} exited {}: {}".format(
                " ".join(argv), completed.returncode, completed.stderr.decode("utf-8", "replace")[-2000:]
            )
        )
    return {"wall": wall}


# -- output ---------------------------------------------------------------------------------


def print_header(title: str, args: argparse.Namespace, notes: Sequence[str] = ()) -> None:
    """The script's title, what is measured (the imported ``imageprovider``) and on what."""
    import requests

    import imageprovider

    print(f"== {title} ({'quick' if args.quick else 'full'} mode)")
    print(f"imageprovider {imageprovider.__version__} from {os.path.dirname(os.path.abspath(imageprovider.__file__))}")
    print(
        f"Python {platform.python_version()} ({sys.executable}), requests {requests.__version__}, {os.cpu_count()} CPU(s), {platform.platform(terse=True)}"
    )
    for note in notes:
        print(note)
    print()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain text table; numbers right-aligned."""
    text = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in text)) if text else len(str(h)) for i, h in enumerate(headers)]
    numeric = [all(_numeric(row[i]) for row in text) and bool(text) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric)).rstrip()

    print(line([str(h) for h in headers]))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print(line(row))
    print()


def _numeric(text: str) -> bool:
    return text in ("n/a", "-") or re.match(r"[-+]?[0-9][0-9,]*(\.[0-9]+)?x?%?\Z", text) is not None


class Targets:
    """Collects ``name: value (target)`` lines; :meth:`print` ends the script's output with them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lines: List[str] = []

    def check(
        self, name: str, value: Optional[float], op: str, limit: float, fmt: str = "{:.2f}", unit: str = ""
    ) -> None:
        """Record ``value`` against ``op limit`` (``<=``, ``>=`` or ``==``); ``None`` is not measured."""
        shown_limit = fmt.format(limit) + unit
        if value is None:
            self.lines.append(f"{self.prefix}.{name}: n/a (target {op} {shown_limit}) NOT MEASURED")
            return
        met = {"<=": value <= limit, ">=": value >= limit, "==": value == limit}[op]
        self.lines.append(
            "{}.{}: {}{} (target {} {}){}".format(
                self.prefix, name, fmt.format(value), unit, op, shown_limit, "" if met else " MISSED"
            )
        )

    def report(self, name: str, value: str) -> None:
        """A figure with no target, printed with the target lines."""
        self.lines.append(f"{self.prefix}.{name}: {value} (no target)")

    def skip(self, name: str, target: str, reason: str) -> None:
        """A target that could not be measured here, and why."""
        self.lines.append(f"{self.prefix}.{name}: n/a (target {target}) SKIPPED: {reason}")

    def print(self) -> None:
        for line in self.lines:
            print(line)
        sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        sys.exit(_serve(sys.argv[2]))
    sys.exit("usage: _common.py --serve OPTIONS_JSON (started by the benchmark scripts)")
