"""
connections: how many TCP connections one provider opens.

The stand-in (in its own process) counts the connections it accepts
(``FakeImagesServer.connections_accepted``); the figures are the counts added
by each phase, with every call checked for a real image.

1. 50 sequential ``generate_image`` calls on one provider. Target: exactly 1.
2. 8 threads sharing one provider, each making N calls (started together on
   a barrier). Target: at most 8.
3. For comparison, no target: the one-call ``imageprovider.generate_image``
   helper, which opens and closes a provider per call (one connection each).

Bodies are real 1024x1024 PNGs (``detail_bits=0``, ~23 KB of base64, so the
phases are quick; connection reuse does not depend on size, only on each body
being read to the end, which the checks make sure of).
"""

import os
import sys
import threading
from typing import List

from _common import StandIn, Targets, parse_args, print_header, print_table, run_count

import imageprovider
from imageprovider import OpenAIImageProvider

PROMPT = "A lighthouse at dusk, oil painting"
THREADS = 8


def check(result: imageprovider.ImageResponse) -> None:
    data = result.images[0].data or b""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise RuntimeError("the call returned no PNG")


def main() -> int:
    args = parse_args(__doc__)
    sequential = 50
    per_thread = run_count(args, 10, 3)
    helper_calls = 10 if not args.quick else 3
    print_header("connections", args, ["TCP connections accepted by the stand-in, per phase"])
    targets = Targets("connections")
    rows = []
    with StandIn(detail_bits=0) as server:
        # 1. Sequential calls on one provider.
        before = server.stats()
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            for _ in range(sequential):
                check(provider.generate_image(PROMPT, size="1024x1024"))
            after = server.stats()
        seq_connections = after["connections"] - before["connections"]
        seq_requests = after["requests"] - before["requests"]
        rows.append((f"{sequential} sequential calls, one provider", seq_requests, seq_connections, "== 1"))

        # 2. Threads sharing one provider.
        before = server.stats()
        errors: List[BaseException] = []
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            barrier = threading.Barrier(THREADS)

            def worker() -> None:
                try:
                    barrier.wait()
                    for _ in range(per_thread):
                        check(provider.generate_image(PROMPT, size="1024x1024"))
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=worker) for _ in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after = server.stats()
        if errors:
            raise RuntimeError(f"{len(errors)} thread(s) failed; first: {errors[0]!r}")
        thread_connections = after["connections"] - before["connections"]
        thread_requests = after["requests"] - before["requests"]
        rows.append(
            (
                f"{THREADS} threads x {per_thread} calls, one provider",
                thread_requests,
                thread_connections,
                f"<= {THREADS}",
            )
        )

        # 3. The one-call helper (a provider per call), for comparison.
        # It configures itself from the environment.
        os.environ["OPENAI_API_KEY"], os.environ["OPENAI_BASE_URL"] = server.api_key, server.base_url
        before = server.stats()
        for _ in range(helper_calls):
            check(imageprovider.generate_image(PROMPT, size="1024x1024"))
        after = server.stats()
        rows.append(
            (
                f"{helper_calls} calls of imageprovider.generate_image",
                after["requests"] - before["requests"],
                after["connections"] - before["connections"],
                "(one per call)",
            )
        )

    print_table(["phase", "requests", "connections", "target"], rows)
    if seq_requests != sequential or thread_requests != THREADS * per_thread:
        print(f"note: the stand-in saw {seq_requests} and {thread_requests} requests (retries?)")
    targets.check("sequential_50_connections", seq_connections, "==", 1, fmt="{:d}")
    targets.check("threads_8_connections", thread_connections, "<=", THREADS, fmt="{:d}")
    targets.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
