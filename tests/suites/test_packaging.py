"""The schemas are valid, exist once, and are found in all three ways people use the package.

1. A source checkout (the repository on ``PYTHONPATH``).
2. A regular, non-editable install of a wheel built from the repository into a fresh virtualenv.
3. A vendored copy: the ``imageprovider/`` and ``schemas/`` folders next to a script.

Each runs a separate interpreter from outside the repository and reports
where the package and each schema were loaded from.
"""

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import jsonschema
import pytest
from canary_plugin import holds_key

import imageprovider
from imageprovider import _schemas, model_specs

#: Builds wheels, virtualenvs and processes: out of the fast lane.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "schemas"

#: What is not source in a checkout: version control, build output, tool caches, virtualenvs
#: (nox's hold whole interpreters). An unpacked sdist or a distribution's build tree has none of them.
NOT_SOURCES = (
    ".git",
    ".hg",
    ".svn",
    "build",
    "dist",
    ".eggs",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".venv",
    "venv",
    ".nox",
    ".tox",
)


def copy_sources(destination):
    """A copy of the repository's sources (no ``.git``, no caches), as an unpacked sdist would be."""
    shutil.copytree(str(REPO), str(destination), ignore=shutil.ignore_patterns(*NOT_SOURCES))
    holds_key(destination / "tests" / "helpers.py")  # it defines the suite's canary API key
    return destination


# Run in a fresh interpreter: proves the schemas load and drive real validation.
PROBE = r"""
import json, sys
import imageprovider
from imageprovider import _schemas, OpenAIImageProvider, RequestValidationError
report = {"package": imageprovider.__file__, "schemas": {}}
for name in _schemas.SCHEMA_NAMES:
    _schemas.get_validator(name)
    report["schemas"][name] = _schemas.schema_location(name)
import imageprovider.batch, imageprovider.testing  # every subpackage ships
import hashlib, pkgutil
from imageprovider import model_specs
# The model table is package data, read with pkgutil.get_data at import.
table = pkgutil.get_data("imageprovider", "models.json")
report["model_table"] = {
    "sha256": hashlib.sha256(table).hexdigest(),
    "checked": model_specs.TABLE_CHECKED,
    "models": sorted(model_specs.MODEL_SPECS),
}
provider = OpenAIImageProvider(api_key="sk-probe", base_url="http://127.0.0.1:9/v1")
try:
    provider.generate_image("an otter", quality="ultra")
except RequestValidationError as exc:
    report["rejected_param"] = exc.param
provider.close()
print(json.dumps(report))
"""


def _clean_env():
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "OPENAI_", "IMAGEPROVIDER_"))
    }
    return env


def _run_probe(python, cwd, extra_env=None, args=()):
    env = _clean_env()
    env.update(extra_env or {})
    completed = subprocess.run(
        [str(python), *args, "-c", PROBE],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])


def _is_within(path, folder):
    return os.path.realpath(path).startswith(os.path.realpath(str(folder)) + os.sep)


def _schema_files():
    return sorted(SCHEMA_DIR.glob("*.json"))


@pytest.mark.parametrize("path", _schema_files(), ids=lambda p: p.name)
def test_every_schema_file_is_a_valid_self_contained_draft7_schema(path):
    """check_schema passes; $schema and $id are set; no reference leaves the file."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == "https://schemas.imageprovider.invalid/" + path.name
    refs = []

    def collect(node):
        if isinstance(node, dict):
            refs.extend(value for key, value in node.items() if key == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    assert all(ref.startswith("#/") for ref in refs)


def test_every_schema_the_library_needs_exists():
    """The names the code asks for are exactly the files shipped."""
    assert sorted(_schemas.SCHEMA_NAMES) == [p.stem for p in _schema_files()]


def _source_files(root):
    """Every file under ``root`` as a relative POSIX path, leaving out what :data:`NOT_SOURCES` names.

    Walks the tree rather than asking git, so it works in an unpacked sdist too.
    """
    found = []
    for folder, subfolders, files in os.walk(str(root)):
        subfolders[:] = sorted(name for name in subfolders if not _not_source(name))
        relative = Path(folder).relative_to(root)
        found.extend((relative / name).as_posix() for name in files if not _not_source(name))
    return sorted(found)


def _not_source(name):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in NOT_SOURCES)


def _schema_copies(root):
    """Files outside ``schemas/`` named like one of the schema files."""
    names = {p.name for p in _schema_files()}
    return [
        path for path in _source_files(root) if path.rsplit("/", 1)[-1] in names and not path.startswith("schemas/")
    ]


def test_schemas_exist_only_once_in_the_repository():
    """No second copy of any schema file is in the source tree anywhere else."""
    assert "schemas/images_response.json" in _source_files(REPO)  # the walk sees the schemas themselves
    assert _schema_copies(REPO) == []


def test_the_one_copy_check_finds_a_second_copy(tmp_path):
    """The walk finds a copy wherever it is put, but not in build output or caches."""
    copy = copy_sources(tmp_path / "unpacked")
    (copy / "build" / "lib" / "imageprovider" / "schemas").mkdir(parents=True)
    (copy / "build" / "lib" / "imageprovider" / "schemas" / "batch.json").write_text("{}")
    assert _schema_copies(copy) == []
    (copy / "imageprovider" / "schemas").mkdir()
    (copy / "imageprovider" / "schemas" / "batch.json").write_text("{}")
    assert _schema_copies(copy) == ["imageprovider/schemas/batch.json"]


def test_regression_the_schema_check_runs_outside_a_git_checkout(tmp_path):
    """Regression: the one-copy check ran ``git ls-files``, so the suite failed in an unpacked sdist or a
    distribution's build. It now passes in a copy without ``.git`` (git cannot find a repository there)."""
    copy = copy_sources(tmp_path / "unpacked")
    assert not (copy / ".git").exists()
    env = _clean_env()
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)  # no repository above the copy either
    env["PYTHONPATH"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no compiled copy of helpers.py (and its key) under tmp_path
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/suites/test_packaging.py::test_schemas_exist_only_once_in_the_repository",
        ],
        cwd=str(copy),
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout.decode() + completed.stderr.decode()
    assert b"1 passed" in completed.stdout


def test_found_from_a_source_checkout(tmp_path):
    """With the repository on PYTHONPATH, the package and schemas come from the checkout."""
    report = _run_probe(sys.executable, tmp_path, {"PYTHONPATH": str(REPO)}, args=("-s",))
    assert _is_within(report["package"], REPO / "imageprovider")
    for location in report["schemas"].values():
        assert _is_within(location, SCHEMA_DIR)
    assert report["rejected_param"] == "quality"


def test_found_in_a_wheel_installed_into_a_fresh_virtualenv(tmp_path):
    """pip builds a wheel (non-editable) that carries the schemas inside the package."""
    wheels = tmp_path / "wheels"
    # Build from a clean copy: a stale build/ folder in the checkout would hide missing packages.
    source = copy_sources(tmp_path / "source")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(wheels),
            str(source),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        env=_clean_env(),
    )
    assert build.returncode == 0, build.stdout.decode()
    (wheel,) = wheels.glob("imageprovider-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(str(env_dir))
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        env=_clean_env(),
    )
    assert install.returncode == 0, install.stdout.decode()

    # The runtime dependencies come from this interpreter, appended after the
    # fresh environment's own site-packages so they cannot shadow the install.
    site_packages = (
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            stdout=subprocess.PIPE,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    dependency_dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site_packages, "zz_test_dependencies.pth").write_text("\n".join(sorted(dependency_dirs)) + "\n")

    report = _run_probe(python, tmp_path)
    installed = Path(site_packages, "imageprovider")
    assert _is_within(report["package"], installed)
    for location in report["schemas"].values():
        assert _is_within(location, installed / "schemas")
    assert report["rejected_param"] == "quality"
    assert (installed / "py.typed").is_file()
    # The model table is in the wheel and loads from the installed package.
    with zipfile.ZipFile(str(wheel)) as archive:
        assert "imageprovider/models.json" in archive.namelist()
    assert (installed / "models.json").is_file()
    source_table = (REPO / "imageprovider" / "models.json").read_bytes()
    assert report["model_table"] == {
        "sha256": hashlib.sha256(source_table).hexdigest(),
        "checked": json.loads(source_table.decode("utf-8"))["checked"],
        "models": sorted(json.loads(source_table.decode("utf-8"))["models"]),
    }
    assert not Path(site_packages, "schemas").exists()

    script = env_dir / ("Scripts/imageprovider.exe" if os.name == "nt" else "bin/imageprovider")
    version = subprocess.run([str(script), "--version"], stdout=subprocess.PIPE, env=_clean_env(), timeout=60)
    assert version.stdout.decode().strip() == "imageprovider " + imageprovider.__version__


def test_found_in_a_vendored_copy_next_to_a_script(tmp_path):
    """Copying imageprovider/ and schemas/ beside a script is enough, even with the package installed."""
    app = tmp_path / "app"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(str(REPO / "imageprovider"), str(app / "imageprovider"), ignore=ignore)
    shutil.copytree(str(SCHEMA_DIR), str(app / "schemas"))
    (app / "script.py").write_text(PROBE)
    env = _clean_env()
    completed = subprocess.run(
        [sys.executable, "-s", "script.py"],
        cwd=str(app),
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    report = json.loads(completed.stdout.decode().strip())
    assert _is_within(report["package"], app / "imageprovider")
    for location in report["schemas"].values():
        assert _is_within(location, app / "schemas")
    assert report["rejected_param"] == "quality"


@pytest.mark.parametrize("layout", ["vendored", "package-data"])
def test_found_in_a_zipapp(tmp_path, layout):
    """``zip_safe = True`` holds: in a zipapp (``python -m zipapp``), the schemas and the model table load through
    the zip importer, whether the schemas sit beside the package (the vendored layout) or inside it (a wheel's)."""
    import zipapp

    app = tmp_path / "app"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(str(REPO / "imageprovider"), str(app / "imageprovider"), ignore=ignore)
    schemas = app / "schemas" if layout == "vendored" else app / "imageprovider" / "schemas"
    shutil.copytree(str(SCHEMA_DIR), str(schemas))
    (app / "__main__.py").write_text(PROBE)
    archive = tmp_path / "app.pyz"
    zipapp.create_archive(str(app), str(archive))
    shutil.rmtree(str(app))  # nothing left on disk but the archive
    completed = subprocess.run(
        [sys.executable, "-s", str(archive)], cwd=str(tmp_path), env=_clean_env(), capture_output=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr.decode()
    report = json.loads(completed.stdout.decode().strip())
    assert _is_within(report["package"], archive)
    assert len(report["schemas"]) == len(_schemas.SCHEMA_NAMES)
    assert report["model_table"]["models"] == sorted(model_specs.MODEL_SPECS)
    assert report["rejected_param"] == "quality"


def test_vendored_copy_without_schemas_fails_with_a_clear_error(tmp_path):
    """Forgetting the schemas folder gives an error saying which folders to copy."""
    app = tmp_path / "app"
    shutil.copytree(
        str(REPO / "imageprovider"), str(app / "imageprovider"), ignore=shutil.ignore_patterns("__pycache__")
    )
    (app / "script.py").write_text(PROBE)
    completed = subprocess.run(
        [sys.executable, "-s", "script.py"],
        cwd=str(app),
        env=_clean_env(),
        capture_output=True,
        timeout=120,
    )
    assert completed.returncode != 0
    assert b"copy both the 'imageprovider' and the 'schemas' folders" in completed.stderr


def test_package_ships_py_typed_and_exports_its_public_names():
    """py.typed is present; every name in __all__ resolves; public callables are typed and documented."""
    assert (REPO / "imageprovider" / "py.typed").is_file()
    for name in imageprovider.__all__:
        assert hasattr(imageprovider, name), name
    for name in ("generate_image", "OpenAIImageProvider"):
        assert getattr(imageprovider, name).__doc__
    hints = imageprovider.OpenAIImageProvider.generate_image.__annotations__
    assert hints["return"] is imageprovider.ImageResponse


def test_every_subpackage_is_listed_for_packaging():
    """setup.cfg names every package folder, so a regular install is not missing one."""
    import configparser

    config = configparser.ConfigParser()
    config.read(str(REPO / "setup.cfg"))
    listed = set(config["options"]["packages"].split())
    folders = {"imageprovider"} | {
        "imageprovider." + path.parent.name for path in (REPO / "imageprovider").glob("*/__init__.py")
    }
    assert folders <= listed
