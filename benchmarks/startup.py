"""
startup: how long a fresh process takes to import the library and to make one image.

Three comparisons, each a median over alternating runs (A B A B ...) of fresh
child processes of this same interpreter (``sys.executable``, without ``-I``,
from a temporary working folder, so the *installed* ``imageprovider`` is what
gets imported; the header prints its location):

1. ``python -c "import imageprovider"`` against ``python -c "import requests"``
   (and ``python -c "pass"`` for the interpreter's own start-up, shown only).
   Target: ratio at most 1.3.
2. A one-call script (import, one ``generate_image`` of 1024x1024 against the
   stand-in, write the PNG) against the same script written with the official
   ``openai`` SDK, when that package is installed here (a benchmark-only
   dependency: ``pip install openai``). Both write the decoded bytes with
   ``Path.write_bytes``, so only the client differs. Target: ratio at most 0.5.
   The stand-in runs in its own process and caches the image, so its cost is
   the same for both.
3. The whole command line, ``imageprovider generate PROMPT --fake -o FILE``
   (in-process stand-in included), in milliseconds; no target.

``--profile`` also prints the slowest modules of ``-X importtime`` for
``import imageprovider`` (self and cumulative microseconds).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, List, Optional, Tuple

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
    run_subprocess,
)

PROMPT = "A lighthouse at dusk, oil painting"

LIBRARY_SCRIPT = f"""\
import sys
from pathlib import Path
from imageprovider import OpenAIImageProvider

with OpenAIImageProvider(api_key=sys.argv[2], base_url=sys.argv[1]) as provider:
    result = provider.generate_image({PROMPT!r}, size="1024x1024")
    Path(sys.argv[3]).write_bytes(result.images[0].data)
"""

SDK_SCRIPT = f"""\
import base64
import sys
from pathlib import Path
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2])
result = client.images.generate(model="gpt-image-2", prompt={PROMPT!r}, size="1024x1024")
Path(sys.argv[3]).write_bytes(base64.b64decode(result.data[0].b64_json))
client.close()
"""


def has_openai() -> bool:
    try:
        completed = subprocess.run([sys.executable, "-c", "import openai"], env=clean_env(), capture_output=True)
    except OSError:
        return False
    return completed.returncode == 0


def cli_command() -> List[str]:
    """The ``imageprovider`` console script installed next to this interpreter, else ``python -m``."""
    folder = os.path.dirname(sys.executable)
    for name in ("imageprovider", "imageprovider.exe"):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return [candidate]
    found = shutil.which("imageprovider")
    return [found] if found else [sys.executable, "-m", "imageprovider"]


def import_profile(cwd: str, min_ms: float = 1.5, max_depth: int = 5) -> None:
    """``-X importtime`` of ``import imageprovider`` as a tree: modules taking ``min_ms`` or more."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import imageprovider"],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    # importtime prints each module when its import ends (children first), indented by depth.
    Node = Tuple[str, int, int, List[Any]]  # name, self us, cumulative us, children
    pending: List[Tuple[int, Node]] = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        children: List[Node] = []
        while pending and pending[-1][0] == depth + 1:
            children.insert(0, pending.pop()[1])
        pending.append((depth, (name.strip(), int(self_us), int(cumulative), children)))
    roots = [node for depth, node in pending if depth == 0 and node[0] == "imageprovider"]
    if not roots:
        print("(no -X importtime output for imageprovider)")
        return
    rows: List[Tuple[str, str, str]] = []

    def walk(node: Node, depth: int) -> None:
        name, self_us, cumulative, children = node
        if cumulative < min_ms * 1000 or depth > max_depth:
            return
        rows.append(("  " * depth + name, f"{cumulative / 1000:.1f}", f"{self_us / 1000:.1f}"))
        for child in sorted(children, key=lambda c: -c[2]):
            walk(child, depth + 1)

    walk(roots[0], 0)
    print(f"-X importtime of 'import imageprovider' (one run; modules of {min_ms} ms or more, first import only):")
    print_table(["module", "cumulative ms", "self ms"], rows)


def main() -> int:
    args = parse_args(__doc__)
    import_runs = run_count(args, 30, 5)
    call_runs = run_count(args, 12, 2)
    cli_runs = run_count(args, 8, 2)
    sdk = has_openai()
    print_header(
        "startup", args, [f"one-call comparison with the openai SDK: {'yes' if sdk else 'no (not installed)'}"]
    )
    targets = Targets("startup")
    rows = []
    work = tempfile.mkdtemp(prefix="imageprovider-bench-")
    try:
        python = sys.executable
        if args.profile:
            import_profile(work)

        # 1. Imports.
        samples = alternate(
            [
                ("import imageprovider", lambda: run_subprocess([python, "-c", "import imageprovider"], work)),
                ("import requests", lambda: run_subprocess([python, "-c", "import requests"], work)),
                ("pass", lambda: run_subprocess([python, "-c", "pass"], work)),
            ],
            import_runs,
            warmup=2,
        )
        lib, req, bare = (median(samples[name], "wall") for name in ("import imageprovider", "import requests", "pass"))
        for name, value in (
            ("python -c 'import imageprovider'", lib),
            ("python -c 'import requests'", req),
            ("python -c 'pass'", bare),
        ):
            rows.append((name, import_runs, f"{value * 1000:.1f}", "-"))
        rows[0] = rows[0][:3] + (f"{lib / req:.2f}x requests",)
        targets.check("import_ratio", lib / req, "<=", 1.3, fmt="{:.3f}")
        targets.report(
            "import_ms", f"{lib * 1000:.1f} ms vs requests {req * 1000:.1f} ms, bare python {bare * 1000:.1f} ms"
        )

        # 2. One call, library against the openai SDK.
        lib_script = os.path.join(work, "one_call_imageprovider.py")
        sdk_script = os.path.join(work, "one_call_openai.py")
        with open(lib_script, "w") as handle:
            handle.write(LIBRARY_SCRIPT)
        with open(sdk_script, "w") as handle:
            handle.write(SDK_SCRIPT)
        with StandIn() as server:
            out = os.path.join(work, "one-call.png")

            def one_call(script: str) -> "dict":
                sample = run_subprocess([python, script, server.base_url, server.api_key, out], work)
                with open(out, "rb") as handle:
                    if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                        raise RuntimeError(f"{script} did not write a PNG")
                os.unlink(out)
                return sample

            variants = [("one call, imageprovider", lambda: one_call(lib_script))]
            if sdk:
                variants.append(("one call, openai SDK", lambda: one_call(sdk_script)))
            samples = alternate(variants, call_runs, warmup=1)
        lib_call = median(samples["one call, imageprovider"], "wall")
        sdk_call: Optional[float] = median(samples["one call, openai SDK"], "wall") if sdk else None
        rows.append(
            (
                "one-call script, imageprovider",
                call_runs,
                f"{lib_call * 1000:.1f}",
                f"{lib_call / sdk_call:.2f}x openai" if sdk_call else "-",
            )
        )
        if sdk_call is not None:
            rows.append(("one-call script, openai SDK", call_runs, f"{sdk_call * 1000:.1f}", "-"))
            targets.check("one_call_ratio_vs_openai", lib_call / sdk_call, "<=", 0.5, fmt="{:.3f}")
        else:
            rows.append(("one-call script, openai SDK", 0, "n/a", "openai not installed"))
            targets.skip(
                "one_call_ratio_vs_openai", "<= 0.50", "the openai package is not installed (pip install openai)"
            )

        # 3. The command line, end to end.
        command = cli_command()
        counter = [0]

        def cli() -> "dict":
            counter[0] += 1
            target = os.path.join(work, f"cli-{counter[0]}.png")
            sample = run_subprocess(command + ["generate", PROMPT, "--fake", "-o", target], work)
            if os.path.getsize(target) < 100_000:
                raise RuntimeError("the CLI wrote no real PNG")
            os.unlink(target)
            return sample

        samples = alternate([("cli", cli)], cli_runs, warmup=1)
        cli_ms = median(samples["cli"], "wall") * 1000
        rows.append(("imageprovider generate --fake -o FILE", cli_runs, f"{cli_ms:.1f}", "-"))
        targets.report("cli_generate_fake_ms", f"{cli_ms:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_table(["wall time of a fresh process", "runs", "median ms", "ratio"], rows)
    targets.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
