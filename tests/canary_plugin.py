"""Suite-wide canary: the test API key must never surface in anything the library emits.

Loaded by ``conftest.py`` (``pytest_plugins``). ``helpers.API_KEY`` is the
canary; during every test this plugin watches

(a) every log record (the ``imageprovider`` logger at DEBUG, a DEBUG handler on
    the root logger): message, arguments, extra fields and formatted traceback;
(b) every :class:`~imageprovider.exceptions.ImageProviderError` the library
    creates (``__init__`` is wrapped for the whole session): ``str``, ``repr``,
    ``args`` and every public attribute, checked when it is created and again
    at teardown for the ones still alive, then with their ``__cause__`` chain;
(c) the test's captured stdout/stderr (the report sections of each phase) and
    whatever a test read through ``capsys``/``capfd`` ``readouterr()``;
(d) every file (and file name) the test left under its ``tmp_path``;
(e) the output of child processes read with ``communicate()`` (so
    ``subprocess.run``): for a child, the ``OPENAI_API_KEY`` or
    ``AZURE_OPENAI_API_KEY`` in its environment is a canary too (unless it is
    the stand-in server's public ``FAKE_API_KEY``), and stays one for the scan
    of that test's files.

Errors a test builds itself are not watched (the creating frame decides):
the check is on what the library emits. A file that holds the key on purpose
(a config file written to provide it) is declared with :func:`holds_key`, or
listed by exact name in :data:`KEY_FILES`. Any hit fails the test, naming
where the key was found. The session ends with ``canary: N checks, H hits``.
"""

import functools
import logging
import os
import stat
import subprocess
import sys
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

import pytest
from _pytest.capture import CaptureFixture  # pytest.CaptureFixture from pytest 6.2 on
from helpers import API_KEY

import imageprovider
import imageprovider.batch  # imported so that its error classes are wrapped too
import imageprovider.testing
from imageprovider.exceptions import ImageProviderError
from imageprovider.testing import FAKE_API_KEY

#: The canary: the key every test uses unless it needs another.
CANARIES: Tuple[str, ...] = (API_KEY,)

#: Files tests write on purpose to hand the key to the library: config files.
#: Exact names relative to the test's tmp_path, per test (module::function, no
#: parameters); never a pattern.
KEY_FILES: Dict[str, Set[str]] = {
    # Each writes an INI config file holding api_key = API_KEY for the provider to read.
    "test_config.py::test_unknown_key_in_default_file_is_a_warning": {"xdg-config/imageprovider/config.ini"},
    "test_config.py::test_timeouts_and_retries_from_config_file_reach_settings": {"tuned.ini"},
    "test_config.py::test_read_timeout_alone_in_config_file_keeps_default_connect": {"read.ini"},
    "test_config.py::test_connect_timeout_alone_in_config_file_keeps_default_read": {"connect.ini"},
    "test_config.py::test_timeout_argument_beats_config_file": {"tuned.ini"},
    "test_config.py::test_plain_http_from_config_file_is_refused": {"http.ini"},
    "test_config.py::test_bad_numbers_in_config_file_are_errors": {"bad.ini"},
    # A copy of the repository's sources, built into a wheel: helpers.py defines API_KEY.
    "test_packaging.py::test_found_in_a_wheel_installed_into_a_fresh_virtualenv": {"source/tests/helpers.py"},
}

_PACKAGE_DIR = os.path.dirname(os.path.abspath(imageprovider.__file__)) + os.sep
_CHUNK = 1024 * 1024
_FORMATTER = logging.Formatter()


class _State:
    """What the current test has produced so far."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checks = 0
        self.total_hits = 0
        self.hits: List[str] = []
        #: Canaries for the current test: CANARIES plus keys handed to child processes.
        self.canaries: List[str] = list(CANARIES)
        self.exempt: Set[str] = set()
        self.errors: weakref.WeakSet[ImageProviderError] = weakref.WeakSet()
        self.active = False

    def reset(self) -> None:
        with self.lock:
            self.hits = []
            self.canaries = list(CANARIES)
            self.exempt = set()
            self.errors = weakref.WeakSet()

    def take_hits(self) -> List[str]:
        with self.lock:
            hits, self.hits = self.hits, []
            self.total_hits += len(hits)
            return hits


STATE = _State()


def _masked(text: str, canaries: List[str]) -> str:
    for canary in canaries:
        text = text.replace(canary, "<CANARY>")
    return text


def _excerpt(text: str, canary: str, canaries: List[str]) -> str:
    """Up to 60 characters either side of the first ``canary``, every canary masked: reports never show a key."""
    at = text.find(canary)
    snippet = text[max(0, at - 60) : at + len(canary) + 60]
    return " ".join(_masked(snippet, canaries).split())


def scan(where: str, content: Union[str, bytes, None], canaries: Optional[List[str]] = None) -> bool:
    """Count one check of ``content``; record a hit (and return True) if it holds a canary."""
    if content is None:
        return False
    found = False
    with STATE.lock:
        looked_for = list(canaries if canaries is not None else STATE.canaries)
        every = looked_for + STATE.canaries
        STATE.checks += 1
        for canary in looked_for:
            if isinstance(content, bytes):
                text = content.decode("utf-8", "replace") if canary.encode("utf-8") in content else None
            else:
                text = content if canary in content else None
            if text is not None:
                STATE.hits.append(f"{_masked(where, every)}: ...{_excerpt(text, canary, every)}...")
                found = True
    return found


def holds_key(path: "Union[str, os.PathLike[str]]") -> None:
    """Declare that ``path`` holds the key on purpose (a config file the test writes)."""
    STATE.exempt.add(os.path.realpath(os.fspath(path)))


# -- (a) logging -----------------------------------------------------------------------


class CanaryHandler(logging.Handler):
    """Formats every record it sees, arguments, extras and traceback included, and scans it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)

    def emit(self, record: logging.LogRecord) -> None:
        # Never raise into the code that logged: a part that cannot be formatted is skipped.
        parts: List[str] = []
        for make in (
            lambda: str(record.msg),
            record.getMessage,
            lambda: repr(record.args),
            lambda: repr(record.__dict__),
            lambda: _FORMATTER.formatException(record.exc_info) if record.exc_info else "",
            lambda: record.stack_info or "",
        ):
            try:
                parts.append(make())
            except Exception:  # noqa: S112 - e.g. an int too long to print: the other parts are still scanned
                continue
        scan(f"log record {record.name} {record.levelname}", "\n".join(parts))


# -- (b) errors -------------------------------------------------------------------------


def _error_texts(error: BaseException) -> Iterator[Tuple[str, str]]:
    yield "str()", str(error)
    yield "repr()", repr(error)
    yield ".args", repr(error.args)
    for name, value in vars(error).items():
        if not name.startswith("_"):
            yield f".{name}", repr(value)


def _check_error(error: ImageProviderError, when: str, chain: bool = False) -> None:
    kind = type(error).__name__
    for part, text in _error_texts(error):
        scan(f"{kind} {part} ({when})", text)
    if chain:
        seen = {id(error)}
        current = error.__cause__ or error.__context__
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            scan(f"{kind}'s chained {type(current).__name__} ({when})", f"{current}\n{current!r}")
            current = current.__cause__ or current.__context__


def _created(error: ImageProviderError) -> None:
    # Frame 0 is this function, 1 the outermost wrapped __init__, 2 whoever built the error.
    creator = sys._getframe(2).f_code.co_filename
    if not os.path.abspath(creator).startswith(_PACKAGE_DIR) or not STATE.active:
        return
    STATE.errors.add(error)
    _check_error(error, "at creation")


def _wrap_init(cls: type) -> Callable[..., None]:
    original = cls.__dict__["__init__"]

    @functools.wraps(original)
    def __init__(self: ImageProviderError, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # Only the most derived __init__ sees the finished error.
        if type(self).__init__ is __init__:
            _created(self)

    return __init__


def _error_classes() -> List[type]:
    found: List[type] = []
    pending = [ImageProviderError]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


# -- (e) child processes ----------------------------------------------------------------

_CHILD_KEYS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")


def _child_canaries(env: Any) -> List[str]:
    keys = []
    if isinstance(env, dict):
        for name in _CHILD_KEYS:
            value = env.get(name)
            # The stand-in server's key is public, and `serve-fake` prints it by design.
            if isinstance(value, str) and value.strip() and value != FAKE_API_KEY:
                keys.append(value.strip())
    return keys


# -- (d) files --------------------------------------------------------------------------


def _scan_file(path: str, label: str) -> None:
    canaries = [canary.encode("utf-8") for canary in STATE.canaries]
    overlap = max(len(canary) for canary in canaries) - 1
    tail = b""
    try:
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(_CHUNK)
                if not chunk:
                    break
                window = tail + chunk
                if any(canary in window for canary in canaries):
                    scan(label, window)
                    return
                tail = window[-overlap:]
    except OSError:
        return
    with STATE.lock:
        STATE.checks += 1


def _scan_tree(root: str, test_key: str) -> None:
    exempt = set(STATE.exempt)
    exempt.update(os.path.realpath(os.path.join(root, name)) for name in KEY_FILES.get(test_key, ()))
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            scan(f"name of {os.path.join(folder, name)}", name)
        for name in files:
            path = os.path.join(folder, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
            except OSError:
                continue
            if os.path.realpath(path) in exempt:
                continue
            _scan_file(path, f"file {os.path.relpath(path, root)} under tmp_path")


# -- the plugin -------------------------------------------------------------------------


class CanaryPlugin:
    """Installs the watchers for the session and fails any test whose output holds a canary."""

    def __init__(self) -> None:
        self._undo: List[Callable[[], None]] = []
        self._handler = CanaryHandler()

    def install(self) -> None:
        root = logging.getLogger()
        root.addHandler(self._handler)
        self._undo.append(lambda: root.removeHandler(self._handler))
        library = logging.getLogger("imageprovider")
        level = library.level
        library.setLevel(logging.DEBUG)
        self._undo.append(lambda: library.setLevel(level))

        for cls in _error_classes():
            if "__init__" in cls.__dict__:
                original = cls.__dict__["__init__"]
                cls.__init__ = _wrap_init(cls)  # type: ignore[misc]  # instrumented on purpose
                self._undo.append(functools.partial(setattr, cls, "__init__", original))

        self._patch(CaptureFixture, "readouterr", self._readouterr)
        self._patch(subprocess.Popen, "__init__", self._popen_init)
        self._patch(subprocess.Popen, "communicate", self._communicate)

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name]
        setattr(owner, name, functools.wraps(original)(make(original)))
        self._undo.append(functools.partial(setattr, owner, name, original))

    @staticmethod
    def _readouterr(original: Any) -> Any:
        def readouterr(self: Any) -> Any:
            result = original(self)
            scan("stdout read with readouterr()", result.out)
            scan("stderr read with readouterr()", result.err)
            return result

        return readouterr

    @staticmethod
    def _popen_init(original: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            self._canary_keys = _child_canaries(kwargs.get("env"))
            with STATE.lock:
                STATE.canaries.extend(key for key in self._canary_keys if key not in STATE.canaries)
            original(self, *args, **kwargs)

        return __init__

    @staticmethod
    def _communicate(original: Any) -> Any:
        def communicate(self: Any, *args: Any, **kwargs: Any) -> Any:
            out, err = original(self, *args, **kwargs)
            canaries = list(CANARIES) + list(getattr(self, "_canary_keys", []))
            scan("stdout of a child process", out, canaries)
            scan("stderr of a child process", err, canaries)
            return out, err

        return communicate

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    @pytest.fixture(autouse=True)
    def _canary_watch(self, request: Any) -> Iterator[None]:
        # Asking for tmp_path here makes it outlive this fixture, so its files are still there below.
        tmp_path = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
        yield
        for error in list(STATE.errors):
            _check_error(error, "at teardown", chain=True)
        if tmp_path is not None:
            module = os.path.basename(str(request.node.fspath))
            _scan_tree(str(tmp_path), f"{module}::{request.node.originalname}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: Any) -> None:
        STATE.reset()
        STATE.active = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        for title, content in report.sections:
            if title.endswith(" " + report.when):
                scan(f"{title.lower()}", content)
        hits = STATE.take_hits()
        if report.when == "teardown":
            STATE.active = False
        if hits:
            message = "The canary API key leaked ({} place{}):\n  {}".format(
                len(hits), "" if len(hits) == 1 else "s", "\n  ".join(hits)
            )
            if report.failed:
                report.sections.append(("canary", message))
            else:
                report.outcome = "failed"
                report.longrepr = message
                if hasattr(report, "wasxfail"):
                    del report.wasxfail

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"canary: {STATE.checks} checks, {STATE.total_hits} hits")


def pytest_configure(config: Any) -> None:
    plugin = CanaryPlugin()
    plugin.install()
    config.pluginmanager.register(plugin, "canary-watch")
    config.add_cleanup(plugin.uninstall)
