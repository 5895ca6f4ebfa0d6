"""The compatibility matrix and the static checks, as nox sessions.

CI (``.ci/run``) runs ``oldest``, ``newest``, ``integration`` and ``lint``; ``nox``
alone runs the same four. ``nox -s tests`` runs the suite on every CPython the package claims
(``nox -s tests-3.10`` on one), against the newest dependency releases.

- ``oldest``: CPython 3.8 with the oldest releases ``setup.cfg`` allows, pinned in
  ``.ci/oldest-stack.txt``.
- ``newest``: the newest CPython here with the newest releases of requests,
  urllib3 and jsonschema, limited only by ``setup.cfg``'s own bounds.
- ``integration``: the real servers and frameworks of ``tests/integration``
  (the ``integration`` extra), which the other sessions deselect.
- ``lint``: ruff (lint and format), ``mypy --strict`` with real stubs for
  requests, and vermin checking that the code runs on CPython 3.8.

Extra arguments go to pytest: ``nox -s oldest -- -k retries -x``.
"""

import json
from pathlib import Path
from typing import Dict, Optional

import nox

OLDEST_PYTHON = "3.8"
NEWEST_PYTHON = "3.13"
SUPPORTED_PYTHONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
STACK = ("requests", "urllib3", "jsonschema")
REPO = Path(__file__).resolve().parent
OLDEST_PINS = REPO / ".ci" / "oldest-stack.txt"

# The checkers are pinned: a new ruff rule, formatter style or stub release must
# not turn CI red on a commit that changed nothing. Bump them on purpose. The
# newest session, by contrast, is never pinned: catching the dependencies' new
# releases is its job.
LINT_TOOLS = [
    "ruff==0.17.6",
    "mypy==2.4.1",
    "types-requests==2.33.0.20261030",
    "types-jsonschema==4.26.0.20261006",
    "vermin==1.9.2",
]
# The oldest Python version mypy can still check against (it cannot target 3.8);
# vermin covers the distance down to 3.8.
MYPY_OLDEST_TARGET = "3.10"
# --strict, with real stubs for requests (types-requests), jsonschema
# (types-jsonschema) and urllib3 (its own): no missing import is ignored.
MYPY_CONFIG = """\
[mypy]
strict = True
"""

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["oldest", "newest", "integration", "lint"]
# A missing interpreter fails the run instead of skipping the session, and nox
# never downloads one: the matrix runs on the interpreters this machine has.
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
# The stdlib's venv: no dependence on which interpreters virtualenv still supports.
nox.options.default_venv_backend = "venv"


def _stack(session: nox.Session) -> Optional[Dict[str, str]]:
    """Log and return the session's CPython version and its requests, urllib3 and jsonschema versions."""
    script = (
        "import json, platform; from importlib.metadata import version; "
        f"print(json.dumps(dict({{name: version(name) for name in {STACK!r}}}, "
        "python=platform.python_version())))"
    )
    output = session.run("python", "-c", script, silent=True)
    if output is None:  # nox --install-only runs no commands
        return None
    stack: Dict[str, str] = json.loads(str(output).strip().splitlines()[-1])
    versions = ", ".join(f"{name} {stack[name]}" for name in STACK)
    session.log(f"Stack: CPython {stack['python']} with {versions}")
    return stack


def _pins(path: Path) -> Dict[str, str]:
    """The name == version lines of a constraints file, by lower-case name."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _pytest(session: nox.Session) -> None:
    # The package is installed (not editable) and pytest's console script does
    # not put the checkout on sys.path: the tests import the installed package,
    # as with the README's test command. The "ci" Hypothesis profile runs every
    # property its full number of examples (the default "dev" profile, a fifth).
    session.run("pytest", "--hypothesis-profile=ci", *session.posargs)


@nox.session(python=OLDEST_PYTHON)
def oldest(session: nox.Session) -> None:
    """The whole suite on CPython 3.8 with the oldest releases setup.cfg allows."""
    pins = _pins(OLDEST_PINS)
    if sorted(pins) != sorted(STACK):
        session.error(f"{OLDEST_PINS} must pin exactly {', '.join(STACK)}, found {pins}")
    session.install("--constraint", str(OLDEST_PINS), ".[test]")
    stack = _stack(session)
    if stack is not None and (
        any(stack[name] != pins[name] for name in STACK) or not stack["python"].startswith(OLDEST_PYTHON + ".")
    ):
        session.error(f"not the oldest stack: installed {stack}, pinned {pins}")
    _pytest(session)


@nox.session(python=NEWEST_PYTHON)
def newest(session: nox.Session) -> None:
    """The whole suite on the newest CPython here with the newest requests, urllib3 and jsonschema."""
    session.install(".[test]")
    _stack(session)
    _pytest(session)


@nox.session(python=SUPPORTED_PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite on one supported CPython (not run by CI), with the newest dependency releases."""
    session.install(".[test]")
    _stack(session)
    _pytest(session)


@nox.session(python=NEWEST_PYTHON)
def integration(session: nox.Session) -> None:
    """The real servers and frameworks (``tests/integration``): gunicorn with --preload (sync and gthread
    workers), and the README's Flask and Django recipes."""
    session.install(".[test,integration]")
    _stack(session)
    session.run("pytest", "-m", "integration", "tests/integration", *session.posargs)


@nox.session(python=NEWEST_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format, mypy --strict, and vermin for the CPython 3.8 floor."""
    # The runtime dependencies and pytest (for the pytest plugin) give mypy real types.
    session.install(".[test]", *LINT_TOOLS)
    # No caches in the checkout: the packaging test copies the checkout to build a wheel.
    session.run("ruff", "check", "--config", ".ci/ruff.toml", "--no-cache", ".")
    session.run("ruff", "format", "--config", ".ci/ruff.toml", "--no-cache", "--check", ".")

    tmp = Path(session.create_tmp())
    config = tmp / "mypy.ini"
    config.write_text(MYPY_CONFIG, encoding="utf-8")
    for target in (MYPY_OLDEST_TARGET, NEWEST_PYTHON):
        session.run(
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp / "mypy-cache"),
            "--python-version",
            target,
            "imageprovider",
        )

    # Syntax and standard-library use must run on CPython 3.8. The package's
    # annotations are evaluated (at definition time on 3.8, and by anyone's
    # typing.get_type_hints), so --eval-annotations: `list[int]` in a signature
    # is a violation. The tests annotate local variables with `queue.Queue[str]`,
    # which Python never evaluates, so they are checked without it; the oldest
    # session imports and runs every test on 3.8 in any case. No --backport
    # flags: the package uses no backport modules.
    vermin = ["vermin", "--target=3.8-", "--violations", "--no-tips", "--no-make-paths-absolute"]
    session.run(*vermin, "--eval-annotations", "imageprovider", "setup.py")
    session.run(*vermin, "tests")
