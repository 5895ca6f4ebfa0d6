"""The package's shape: no module reaches into another's private attributes, the flow of a call goes one
way, and the stand-in server is an independent oracle (it imports none of the client's checks)."""

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parents[2] / "imageprovider"

#: ``object._name`` accesses allowed across modules, each with its reason.
ALLOWED_ATTRIBUTES: Dict[str, str] = {
    "sys._getframe": "the standard library's way to find the caller a warning should name",
    "._asdict": "a NamedTuple method, public by the namedtuple convention",
}

#: Modules whose imports a lower layer must not make: the flow goes build -> check -> send -> read ->
#: result -> save, and nothing below the provider knows the provider, the command line or batches.
LAYERS: Dict[str, Set[str]] = {
    "_transport": {"provider", "cli", "batch", "_response", "_request", "results", "_saving", "streaming"},
    "_errors": {"provider", "cli", "batch", "_transport", "_response", "_request", "results", "_saving"},
    "_response": {"provider", "cli", "batch", "_request", "results", "_saving", "streaming"},
    "_request": {"provider", "cli", "batch", "_transport", "_response", "results", "_saving"},
    "results": {"provider", "cli", "batch", "_transport", "_response", "_request"},
    "_saving": {"provider", "cli", "batch", "_transport", "_response", "_request"},
    "_retry": {"provider", "cli", "batch", "_transport", "_response", "_request"},
}


def modules() -> Iterator[Tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _defined_privately(tree: ast.Module) -> Set[str]:
    """Private names a module defines itself: ``self._x = ...`` attributes, and private functions and classes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            names.add(node.name)
    return names


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(base: Path, dotted: str) -> bool:
    target = base.joinpath(*dotted.split("."))
    return target.with_suffix(".py").exists() or (target / "__init__.py").exists()


def _dotted(node: ast.expr) -> str:
    """``a.b._c`` for an attribute chain (``ast.unparse`` needs Python 3.9)."""
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return "<expr>"


def private_reaches() -> List[str]:
    """Every place a module uses another module's private name or attribute."""
    found = []
    for path, tree in modules():
        own = _defined_privately(tree)
        relative = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                package = path.parent
                for _ in range(max(node.level - 1, 0)):
                    package = package.parent
                for alias in node.names:
                    source = f"{node.module}.{alias.name}" if node.module else alias.name
                    if _is_private(alias.name) and not _is_module(package if node.level else PACKAGE.parent, source):
                        found.append(f"{relative}:{node.lineno}: imports {alias.name} from {node.module}")
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                text = _dotted(node)
                if node.attr in own or text in ALLOWED_ATTRIBUTES or "." + node.attr in ALLOWED_ATTRIBUTES:
                    continue
                found.append(f"{relative}:{node.lineno}: {text}")
    return found


def test_no_module_reaches_into_another_modules_private_attributes() -> None:
    """A private name is used only in the module that defines it (private *modules* are the package's own)."""
    assert private_reaches() == []


def test_the_scan_finds_a_reach_when_there_is_one(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The scan above is not vacuous: a planted reach into another object's private attribute is reported."""
    planted = tmp_path / "imageprovider"
    planted.mkdir()
    (planted / "a.py").write_text(
        "class A:\n    def __init__(self):\n        self._own = 1\n\n    def same(self, other):\n        return other._own\n",
        encoding="utf-8",
    )
    (planted / "b.py").write_text("from .a import _helper\n\ndef peek(a):\n    return a._own\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", planted)
    assert private_reaches() == ["imageprovider/b.py:1: imports _helper from a", "imageprovider/b.py:4: a._own"]


def _imports(tree: ast.Module) -> Set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.module:
                names.add(node.module.split(".")[0])
            names.update(alias.name for alias in node.names)
    return names


def test_the_layers_import_only_downwards() -> None:
    """The transport, errors, bodies, requests, results and saving know nothing of what sits above them."""
    problems = []
    for path, tree in modules():
        if path.parent != PACKAGE:
            continue
        above = LAYERS.get(path.stem, set())
        for name in sorted(_imports(tree) & above):
            problems.append(f"{path.name} imports {name}")
    assert problems == []


#: The client's modules that check requests or read responses: the stand-in must judge requests on its own.
CLIENT_CHECKS = {"_request", "_rules", "model_specs", "_inputs", "_imageinfo", "_response", "_saving", "results"}


def test_the_stand_in_imports_none_of_the_clients_checks() -> None:
    """The stand-in is an independent oracle: it reads the schema files and parses multipart bodies, and judges
    every request with its own rules (its pytest plugin may hand tests a provider)."""
    problems = []
    for path, tree in modules():
        if path.parent.name != "testing":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                names = {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
                problems += [f"{path.name} imports {name}" for name in sorted(names & CLIENT_CHECKS)]
    assert problems == []
