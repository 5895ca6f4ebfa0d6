"""
memory: peak Python memory (tracemalloc) while generating and saving n=4 large images.

Each variant runs in a fresh child process (this script with ``--child``):
imports done, provider or session built and warmed up with one tiny call
(a 16x16 JPEG: connection open, schemas loaded), *then* tracemalloc starts,
and the measured call and the writing of its images to a fresh folder happen
under it. The stand-in runs in yet another process, so its memory is not
counted. The images are the stand-in's largest: 3840x2160 PNGs (about 9 MB
each with the default ``detail_bits=2``, so ~36 MB decoded and ~48 MB of
base64 per response).

Variants:

* ``baseline``: ``requests`` + ``json.loads(resp.content)`` + ``b64decode``,
  the images held as bytes, then written to files.
* ``library bytes``: ``provider.generate_image(..., n=4, size=...)`` then
  ``response.save_all(dir)``. Target: peak / decoded bytes at most 1.5
  (the baseline is about 3.8).
* ``library save_to``: ``provider.generate_image(..., n=4, size=...,
  save_to=dir)``, which writes the images straight to disk and returns
  file-backed images (``image.path``). Target: peak at most twice the largest
  single decoded image plus 1 MiB. Printed ``n/a (not implemented)`` while
  ``generate_image`` has no ``save_to`` keyword.

The ratio is tracemalloc's peak divided by the total decoded image bytes.
For a cross-check that tracemalloc misses nothing big (memory allocated
outside Python's allocators), the table also shows how far the process's
peak resident size (``VmHWM``, Linux only) rose during the measured call; it
includes the tracing's own overhead and is not part of any target.
Medians over alternating runs (each in a new process); the written files are
checked (PNG signature, total size) so a variant cannot win by not saving.

``--profile`` also prints, for each variant, the top lines of a tracemalloc
snapshot taken near the peak (a watcher thread snapshots whenever the traced
memory reaches a new high by 1 MiB or more).
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Any, Dict, List, Optional

from _common import (
    StandIn,
    Targets,
    alternate,
    clean_env,
    median,
    parse_args,
    print_header,
    print_table,
    run_count,
)

PROMPT = "A lighthouse at dusk, oil painting"
MODEL = "gpt-image-2"
LARGEST_SIZE = "3840x2160"
N = 4
MIB = 1024 * 1024
VARIANTS = ("baseline", "library bytes", "library save_to")


# -- child side -------------------------------------------------------------------------------


class PeakWatcher:
    """Snapshots tracemalloc whenever traced memory reaches a new high (by ``step`` bytes or more)."""

    def __init__(self, step: int = MIB, interval: float = 0.002) -> None:
        self.step = step
        self.interval = interval
        self.best = 0
        self.snapshot: Optional[tracemalloc.Snapshot] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            current = tracemalloc.get_traced_memory()[0]
            if current >= self.best + self.step:
                self.best = current
                self.snapshot = tracemalloc.take_snapshot()

    def __enter__(self) -> "PeakWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join()


def max_rss() -> Optional[int]:
    """This process's peak resident size so far, in bytes (Linux ``VmHWM``; ``None`` elsewhere).

    Not ``getrusage``: its ``ru_maxrss`` survives exec, so a child would inherit its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def child(variant: str, base_url: str, api_key: str, out_dir: str, profile: bool) -> Dict[str, Any]:
    """Run one variant and return its figures (the parent reads them as JSON)."""
    import requests

    from imageprovider import OpenAIImageProvider

    params: Dict[str, Any] = {"size": LARGEST_SIZE, "n": N}
    warm: Dict[str, Any] = {"size": "1024x1024", "output_format": "jpeg"}
    if variant == "baseline":
        session = requests.Session()
        url = base_url + "/images/generations"
        headers = {"Authorization": "Bearer " + api_key, "Content-Type": "application/json"}

        def post(body: Dict[str, Any]) -> requests.Response:
            payload = json.dumps(dict({"prompt": PROMPT, "model": MODEL}, **body)).encode("utf-8")
            response = session.post(url, data=payload, headers=headers, timeout=(5, 600))
            response.raise_for_status()
            return response

        _ = post(warm).content

        def run() -> None:
            body = json.loads(post(params).content)
            images = [base64.b64decode(item["b64_json"]) for item in body["data"]]
            for index, data in enumerate(images):
                with open(os.path.join(out_dir, f"image-{index + 1}.png"), "wb") as handle:
                    handle.write(data)

    else:
        provider = OpenAIImageProvider(api_key=api_key, base_url=base_url)
        _ = provider.generate_image(PROMPT, **warm).images[0].data
        if variant == "library bytes":

            def run() -> None:
                provider.generate_image(PROMPT, **params).save_all(out_dir)

        else:
            try:
                provider.generate_image(PROMPT, save_to=None, **warm)  # type: ignore[call-arg]  # save_to is newer than some installed versions
            except TypeError as exc:
                if "save_to" in str(exc):
                    return {"implemented": False}
                raise

            def run() -> None:
                response = provider.generate_image(PROMPT, save_to=out_dir, **params)  # type: ignore[call-arg]  # save_to is newer than some installed versions
                paths = [getattr(image, "path", None) for image in response.images]
                if not all(paths):
                    raise RuntimeError("save_to returned images without a path")

    rss_before = max_rss()
    tracemalloc.start()
    started = time.perf_counter()
    if profile:
        with PeakWatcher() as watcher:
            run()
    else:
        run()
    elapsed = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = max_rss()
    figures: Dict[str, Any] = {"implemented": True, "peak": peak, "after": current, "seconds": elapsed}
    if rss_before is not None and rss_after is not None:
        figures["rss_growth"] = rss_after - rss_before
    if profile and watcher.snapshot is not None:
        figures["top"] = [str(stat) for stat in watcher.snapshot.statistics("lineno")[:12]]
        figures["top_peak_at"] = watcher.best
    return figures


# -- parent side ------------------------------------------------------------------------------


def check_files(folder: str) -> List[int]:
    """Sizes of the PNG files written; raises unless there are exactly N real PNGs."""
    sizes = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                raise RuntimeError(f"{path} is not a PNG")
        sizes.append(os.path.getsize(path))
    if len(sizes) != N:
        raise RuntimeError(f"{folder} holds {len(sizes)} files, not {N}: {os.listdir(folder)}")
    return sizes


def prime(server: StandIn) -> None:
    """One request from here, so that the stand-in has drawn (and cached) the images before any run."""
    import requests

    response = requests.post(
        server.base_url + "/images/generations",
        json={"prompt": PROMPT, "model": MODEL, "size": LARGEST_SIZE, "n": N},
        headers={"Authorization": "Bearer " + server.api_key},
        timeout=(5, 600),
    )
    response.raise_for_status()


def run_child(variant: str, server: StandIn, work: str, profile: bool) -> Dict[str, Any]:
    out_dir = tempfile.mkdtemp(prefix="out-", dir=work)
    try:
        completed = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", variant, server.base_url, server.api_key, out_dir]
            + (["--profile"] if profile else []),
            cwd=work,
            env=clean_env(),
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"variant {variant!r} failed:\n{completed.stderr[-3000:]}")
        figures: Dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        if figures["implemented"]:
            sizes = check_files(out_dir)
            figures["decoded"] = sum(sizes)
            figures["largest"] = max(sizes)
        return figures
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def main() -> int:
    args = parse_args(__doc__)
    runs = run_count(args, 3, 1)
    print_header(
        "memory",
        args,
        [f"tracemalloc peak while generating n={N} images of {LARGEST_SIZE} and writing them, fresh process per run"],
    )
    targets = Targets("memory")
    work = tempfile.mkdtemp(prefix="imageprovider-bench-")
    implemented = {"library save_to": True}
    try:
        with StandIn() as server:

            def variant(name: str) -> Any:
                def run() -> Dict[str, Any]:
                    if not implemented.get(name, True):
                        return {"implemented": False}
                    figures = run_child(name, server, work, args.profile)
                    implemented[name] = bool(figures["implemented"])
                    return figures

                return run

            prime(server)
            samples = alternate([(name, variant(name)) for name in VARIANTS], runs, warmup=0)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    ratios: Dict[str, Optional[float]] = {}
    limit: Optional[float] = None
    peak_save_to: Optional[float] = None
    for name in VARIANTS:
        measured = [s for s in samples[name] if s.get("implemented")]
        if not measured:
            rows.append((name, 0, "n/a (not implemented)", "-", "-", "-", "-", "-"))
            ratios[name] = None
            continue
        peak = median(measured, "peak")
        decoded = median(measured, "decoded")
        largest = median(measured, "largest")
        ratio = peak / decoded
        ratios[name] = ratio
        note = "-"
        if name == "library save_to":
            limit = 2 * largest + MIB
            peak_save_to = peak
            note = "limit {:.1f} MiB: {}".format(limit / MIB, "under" if peak <= limit else "OVER")
        rows.append(
            (
                name,
                len(measured),
                f"{peak / MIB:.1f}",
                f"{decoded / MIB:.1f}",
                f"{ratio:.2f}",
                f"{median(measured, 'seconds'):.2f}",
                f"{median(measured, 'rss_growth') / MIB:.1f}" if all("rss_growth" in s for s in measured) else "n/a",
                note,
            )
        )
    print_table(
        [
            "variant",
            "runs",
            "peak MiB",
            "decoded MiB",
            "peak/decoded",
            "seconds",
            "max RSS growth MiB",
            "save_to limit",
        ],
        rows,
    )
    if args.profile:
        for name in VARIANTS:
            for sample in samples[name][-1:]:
                if sample.get("top"):
                    print(f"tracemalloc near the peak, {name} (snapshot at {sample['top_peak_at'] / MIB:.1f} MiB):")
                    for line in sample["top"]:
                        print("  " + line)
                    print()

    targets.report("baseline_ratio", f"{ratios['baseline']:.2f}" if ratios["baseline"] is not None else "n/a")
    targets.check("bytes_ratio", ratios["library bytes"], "<=", 1.5)
    if peak_save_to is None or limit is None:
        targets.skip("save_to_peak_mib", "<= 2 x largest image + 1 MiB", "generate_image(save_to=...) not implemented")
    else:
        targets.check("save_to_peak_mib", peak_save_to / MIB, "<=", limit / MIB, fmt="{:.1f}", unit=" MiB")
    targets.print()
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "--child":
        result = child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], "--profile" in sys.argv[6:])
        print(json.dumps(result))
        sys.exit(0)
    sys.exit(main())
