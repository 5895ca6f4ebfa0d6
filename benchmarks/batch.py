"""
batch: 500 items through the online batch mode at a simulated rate limit.

The stand-in (in its own process) allows 300 images per minute and takes
0.5-2 s (uniformly random) per image. ``imageprovider.batch.run_batch`` is
given the same limit (``images_per_minute=300``, as a user who knows their
tier would) and works through 500 one-image items. Quick mode: 40 items at
1200 images per minute with 0.1-0.4 s per image (a few seconds).

Before the run the stand-in's window is used up (``--fresh-window`` skips
this): its bucket starts full, which would let the first 300 images through
at once and measure the burst rather than the pacing. A used-up window is
also what a second run on the same key meets.

Workers: enough to keep the limit busy even when every image is slow, by
Little's law ``rate x slowest latency`` = 5/s x 2 s = 10 (mean latency alone
would need 6.25, leaving no slack for slow draws). More workers only queue
on the shared limiter.

Targets:

* achieved rate (images / elapsed, from the run's summary) at least 90% of
  the limit;
* 429 responses (counted by the stand-in, retried ones included) at most
  2% of the image requests it received;
* every item done exactly once: one ``done`` line per item in
  ``manifest.jsonl``, no ``failed`` line, and exactly one PNG per item.

Images are 1024x1024 PNGs with ``detail_bits=0`` (~17 KB): the subject is
pacing, not bandwidth, and 500 full-size images would add ~600 MB of writes.
"""

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from typing import Any, Dict, List, Tuple

from _common import StandIn, Targets, parse_args, print_header, print_table

from imageprovider import OpenAIImageProvider
from imageprovider.batch import MANIFEST_NAME, run_batch


def latency_range(text: str) -> Tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def options(parser: Any) -> None:
    parser.add_argument("--items", type=int, help="items in the batch (default 500; quick 40)")
    parser.add_argument("--ipm", type=int, help="the stand-in's images per minute (default 300; quick 1200)")
    parser.add_argument("--latency", help="seconds per image, LOW-HIGH (default 0.5-2; quick 0.1-0.4)")
    parser.add_argument("--workers", type=int, help="worker threads (default: rate x slowest latency)")
    parser.add_argument(
        "--no-client-limit", action="store_true", help="do not tell run_batch the limit (pace from headers alone)"
    )
    parser.add_argument("--fresh-window", action="store_true", help="leave the stand-in's window full at the start")


def write_items(path: str, count: int) -> List[str]:
    ids = [f"item-{index:04d}" for index in range(count)]
    with open(path, "w", encoding="utf-8") as handle:
        for index, item_id in enumerate(ids):
            entry = {"id": item_id, "prompt": f"Lighthouse number {index} at dusk", "size": "1024x1024"}
            handle.write(json.dumps(entry) + "\n")
    return ids


def exactly_once(out_dir: str, ids: List[str]) -> Dict[str, Any]:
    """What the manifest and the folder say about each item."""
    done: Counter = Counter()
    failed: Counter = Counter()
    listed: List[str] = []
    with open(os.path.join(out_dir, MANIFEST_NAME), encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["state"] == "done":
                done[record["id"]] += 1
                listed.extend(record.get("files") or [])
            else:
                failed[record["id"]] += 1
    images = sorted(name for name in os.listdir(out_dir) if name.endswith(".png"))
    not_png = []
    for name in images:
        with open(os.path.join(out_dir, name), "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                not_png.append(name)
    expected = sorted(f"{item_id}.png" for item_id in ids)
    return {
        "done_once": sum(1 for item_id in ids if done[item_id] == 1),
        "done_twice": sum(1 for item_id in ids if done[item_id] > 1),
        "missing": sum(1 for item_id in ids if done[item_id] == 0),
        "failed_lines": sum(failed.values()),
        "files_match": images == expected and sorted(listed) == expected and not not_png,
        "files": len(images),
    }


def main() -> int:
    args = parse_args(__doc__, options)
    items = args.items or (40 if args.quick else 500)
    ipm = args.ipm or (1200 if args.quick else 300)
    low, high = latency_range(args.latency or ("0.1-0.4" if args.quick else "0.5-2"))
    workers = args.workers or max(1, math.ceil(ipm / 60 * high))
    client_limit = None if args.no_client_limit else ipm
    print_header(
        "batch",
        args,
        [
            f"{items} items, stand-in limit {ipm} images/min, latency {low:g}-{high:g} s per image, "
            f"{workers} workers, run_batch(images_per_minute={client_limit}), "
            f"window {'full' if args.fresh_window else 'used up'} at the start"
        ],
    )
    targets = Targets("batch")
    work = tempfile.mkdtemp(prefix="imageprovider-bench-")
    try:
        source = os.path.join(work, "prompts.jsonl")
        out_dir = os.path.join(work, "out")
        ids = write_items(source, items)
        with StandIn(images_per_minute=ipm, latency=[low, high], detail_bits=0) as server:
            if not args.fresh_window:
                server.drain()
            before = server.stats()
            with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
                started = time.perf_counter()
                summary = run_batch(
                    source, out_dir, provider=provider, concurrency=workers, images_per_minute=client_limit
                )
                wall = time.perf_counter() - started
            after = server.stats()
        requests_seen = after["requests"] - before["requests"]
        limited = after["rate_limited"] - before["rate_limited"]
        once = exactly_once(out_dir, ids)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rate = summary.images_per_minute
    share_429 = limited / requests_seen if requests_seen else 0.0
    print_table(
        ["figure", "value"],
        [
            ("items done / failed / pending", f"{summary.done} / {summary.failed} / {summary.pending}"),
            ("elapsed (summary) s", f"{summary.elapsed:.1f}"),
            ("elapsed (wall, run_batch call) s", f"{wall:.1f}"),
            ("achieved images/min", f"{rate:.1f}"),
            ("limit images/min", ipm),
            ("achieved / limit", f"{rate / ipm:.3f}"),
            ("image requests at the stand-in", requests_seen),
            ("429 responses", limited),
            ("429 share", f"{share_429 * 100:.2f}%"),
            ("items with exactly one done line", f"{once['done_once']} of {items}"),
            ("items done more than once / missing", f"{once['done_twice']} / {once['missing']}"),
            ("failed lines in the manifest", once["failed_lines"]),
            (
                "PNG files (one per item, as listed)",
                f"{once['files']} ({'match' if once['files_match'] else 'MISMATCH'})",
            ),
        ],
    )
    targets.check("rate_vs_limit", rate / ipm, ">=", 0.90, fmt="{:.3f}")
    targets.check("share_429", share_429 * 100, "<=", 2.0, fmt="{:.2f}", unit="%")
    exact = once["done_once"] == items and once["failed_lines"] == 0 and once["files_match"] and summary.done == items
    targets.check("items_done_exactly_once", once["done_once"] if exact else -1, "==", items, fmt="{:d}")
    targets.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
