"""
overhead: CPU and wall time per ``generate_image`` against plain ``requests``.

The stand-in runs in its own process (so ``time.process_time()`` counts the
client alone) and answers every call from the same cached image. Two bodies:

* **large**: 1024x1024 PNG with ``detail_bits=4``, about 2.7 MB of base64
  (the issue's "~2.5 MB"; the default ``detail_bits=2`` gives 1.5 MB).
  Library: ``provider.generate_image(prompt, size="1024x1024")`` then
  ``.images[0].data`` (validation on, bytes decoded). Baseline:
  ``requests.Session().post`` of the same JSON body with the same headers
  (copied from what the stand-in received from the library), then
  ``json.loads(resp.content)`` and ``base64.b64decode`` of each image.
  Target: library median / baseline median at most 1.10 (CPU and wall).
* **tiny**: the same with ``output_format="jpeg"``, for which the stand-in
  returns a 16x16 JPEG (a body of about 1 KB): the fixed cost per call.
  Target: at most 1.5 ms more than the baseline (CPU and wall).

Both variants are warmed up (connection open, schemas loaded), then run
alternately A B A B; the table shows medians and run counts.

``--profile`` also runs the library variants under ``cProfile`` and prints
the top entries by cumulative and by own time.
"""

import base64
import cProfile
import json
import pstats
import sys
from functools import partial
from typing import Any, Callable, Dict, List, Tuple

import requests
from _common import (
    StandIn,
    Targets,
    alternate,
    median,
    parse_args,
    print_header,
    print_table,
    run_count,
    timed,
)

from imageprovider import OpenAIImageProvider

PROMPT = "A lighthouse at dusk, oil painting"
MODEL = "gpt-image-2"


def library_call(provider: OpenAIImageProvider, params: Dict[str, Any]) -> Callable[[], int]:
    def call() -> int:
        result = provider.generate_image(PROMPT, **params)
        return sum(len(image.data or b"") for image in result.images)

    return call


def baseline_call(
    session: requests.Session, url: str, headers: Dict[str, str], params: Dict[str, Any], seen: Dict[str, int]
) -> Callable[[], int]:
    """The same call with plain requests; ``seen["body"]`` gets the response body's length."""
    payload = json.dumps(dict({"prompt": PROMPT, "model": MODEL}, **params), separators=(",", ":")).encode("utf-8")

    def call() -> int:
        response = session.post(url, data=payload, headers=headers, timeout=(5, 600))
        response.raise_for_status()
        content = response.content
        seen["body"] = len(content)
        body = json.loads(content)
        return sum(len(base64.b64decode(item["b64_json"])) for item in body["data"])

    return call


def baseline_headers(server: StandIn) -> Dict[str, str]:
    """What the library sent, minus what requests adds by itself (length, host, encoding, connection)."""
    sent = server.last_headers()
    skip = {"host", "content-length", "accept-encoding", "connection"}
    return {name: value for name, value in sent.items() if name.lower() not in skip}


def profile(call: Callable[[], int], runs: int, title: str, limit: int = 18) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        call()
    profiler.disable()
    for order in ("cumulative", "tottime"):
        print(f"cProfile, {title}, {runs} calls, top {limit} by {order}:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(limit)


def main() -> int:
    args = parse_args(
        __doc__,
        lambda p: p.add_argument("--detail-bits", type=int, default=4, help="stand-in PNG noise bits (body size)"),
    )
    large_runs = run_count(args, 40, 4)
    tiny_runs = run_count(args, 300, 20)
    print_header(
        "overhead",
        args,
        ["per call: generate_image + decode vs requests.post + json.loads + b64decode, stand-in in another process"],
    )
    targets = Targets("overhead")
    cases: List[Tuple[str, Dict[str, Any], int]] = [
        ("large", {"size": "1024x1024"}, large_runs),
        ("tiny", {"size": "1024x1024", "output_format": "jpeg"}, tiny_runs),
    ]
    rows = []
    with StandIn(detail_bits=args.detail_bits) as server:
        url = server.base_url + "/images/generations"
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            library_call(provider, {"size": "1024x1024"})()
            headers = baseline_headers(server)
            with requests.Session() as session:
                results: Dict[str, Dict[str, float]] = {}
                for name, params, runs in cases:
                    lib = library_call(provider, params)
                    seen: Dict[str, int] = {}
                    base = baseline_call(session, url, headers, params, seen)
                    decoded = lib()
                    if base() != decoded:
                        raise RuntimeError("the baseline and the library decoded different amounts")
                    samples = alternate(
                        [("library", partial(timed, lib)), ("baseline", partial(timed, base))], runs, warmup=3
                    )
                    figures = {
                        f"{variant}_{metric}": median(samples[variant], metric)
                        for variant in ("library", "baseline")
                        for metric in ("wall", "cpu")
                    }
                    figures["decoded"] = decoded
                    results[name] = figures
                    for variant in ("library", "baseline"):
                        rows.append(
                            (
                                name,
                                variant,
                                runs,
                                f"{seen['body'] / 1e6:.3f}",
                                f"{decoded / 1e6:.3f}",
                                f"{figures[variant + '_wall'] * 1000:.2f}",
                                f"{figures[variant + '_cpu'] * 1000:.2f}",
                            )
                        )
                if args.profile:
                    for name, params, _ in cases:
                        profile(library_call(provider, params), 20 if name == "large" else 300, f"library, {name} body")

    print_table(["body", "variant", "runs", "body MB", "image MB", "wall ms", "cpu ms"], rows)
    large, tiny = results["large"], results["tiny"]
    print_table(
        ["figure", "wall", "cpu"],
        [
            (
                "large: library / baseline",
                f"{large['library_wall'] / large['baseline_wall']:.3f}",
                f"{large['library_cpu'] / large['baseline_cpu']:.3f}",
            ),
            (
                "tiny: library - baseline (ms)",
                f"{(tiny['library_wall'] - tiny['baseline_wall']) * 1000:.3f}",
                f"{(tiny['library_cpu'] - tiny['baseline_cpu']) * 1000:.3f}",
            ),
        ],
    )
    targets.check("large_wall_ratio", large["library_wall"] / large["baseline_wall"], "<=", 1.10, fmt="{:.3f}")
    targets.check("large_cpu_ratio", large["library_cpu"] / large["baseline_cpu"], "<=", 1.10, fmt="{:.3f}")
    targets.check(
        "tiny_wall_extra_ms", (tiny["library_wall"] - tiny["baseline_wall"]) * 1000, "<=", 1.5, fmt="{:.3f}", unit=" ms"
    )
    targets.check(
        "tiny_cpu_extra_ms", (tiny["library_cpu"] - tiny["baseline_cpu"]) * 1000, "<=", 1.5, fmt="{:.3f}", unit=" ms"
    )
    targets.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
