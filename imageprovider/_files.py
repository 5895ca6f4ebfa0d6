"""
imageprovider._files
~~~~~~~~~~~~~~~~~~~~

Writing files safely: a temporary file in the target folder, flushed and
fsynced, then renamed onto the final name (and the folder fsynced), so an
interrupted save never leaves a partial file under that name; file names made
from prompts are sanitised; extensions follow the bytes, not the request.
"""

import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import IO, Callable, Dict, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

#: How temporary files are opened: created new (never an existing file or a
#: symlink), read-write, binary on Windows, not inherited by child processes.
_PART_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOINHERIT", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
#: Names tried for a temporary file before giving up (as ``tempfile.TMP_MAX``).
_PART_ATTEMPTS = 10000

#: File extension for each sniffed MIME type.
EXTENSIONS: Dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
}
#: What the formats the library saves are called, for messages.
FORMAT_NAMES = "PNG, JPEG, WEBP, GIF or SVG"
#: Suffixes recognised as image extensions (and replaced when they do not match the bytes).
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg"}
#: Longest file stem made from a prompt, in characters and in UTF-8 bytes (file
#: systems count bytes: 255 at most, with room left for "-16.webp" and ".json").
MAX_STEM_LENGTH = 80
MAX_STEM_BYTES = 200
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}


def safe_stem(text: str, default: str = "image", max_length: int = MAX_STEM_LENGTH) -> str:
    """A file stem from free text: no separators, no ``..``, no control characters, bounded length.

    >>> safe_stem("A cat / on ../../etc\\n the mat!")
    'a-cat-on-etc-the-mat'
    """
    normalized = unicodedata.normalize("NFKC", text)
    # Line breaks and tabs separate words; other control characters vanish.
    kept = "".join(
        char if (char.isalnum() or char in "-_") else " "
        for char in normalized
        if char.isspace() or unicodedata.category(char)[0] != "C"
    )
    stem = re.sub(r"[\s_-]+", "-", kept.strip().lower()).strip("-.")
    stem = stem[:max_length]
    while len(stem.encode("utf-8")) > MAX_STEM_BYTES:
        stem = stem[:-1]
    stem = stem.rstrip("-.")
    if not stem or stem.split(".")[0] in _WINDOWS_RESERVED:
        return default
    return stem


def with_extension(path: Path, extension: str) -> Path:
    """``path`` with the extension the bytes call for: appended, or replacing a wrong image suffix."""
    suffix = path.suffix.lower()
    if suffix == extension or (suffix == ".jpeg" and extension == ".jpg"):
        return path
    if suffix in _IMAGE_SUFFIXES:
        return path.with_suffix(extension)
    return path.with_name(path.name + extension)


def resolve_target(path_or_dir: PathLike, stem: str, extension: str) -> Path:
    """Where to save: ``path_or_dir`` itself (extension fixed), or ``stem + extension`` inside it if it is a folder."""
    raw = os.fspath(path_or_dir)
    target = Path(raw)
    if target.is_dir() or raw.endswith((os.sep, "/")):
        return target / (stem + extension)
    return with_extension(target, extension)


def write_atomic(path: PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    return write_atomic_from(path, lambda stream: stream.write(data), overwrite=overwrite)


def write_atomic_from(path: PathLike, fill: Callable[[IO[bytes]], object], *, overwrite: bool = False) -> Path:
    """Like :func:`write_atomic`, with ``fill(stream)`` writing the content.

    Whatever ``fill`` raises, no file is left under ``path`` and the temporary file is removed.
    """
    target = Path(os.fspath(path))
    refuse_existing_file(target, overwrite)
    return write_atomic_sniffed(target.parent, fill, lambda head: target, overwrite=overwrite)


def write_atomic_sniffed(
    folder: PathLike,
    fill: Callable[[IO[bytes]], object],
    target_for: Callable[[bytes], Path],
    *,
    overwrite: bool = False,
) -> Path:
    """Write with ``fill(stream)`` into a temporary file in ``folder``, then publish it
    under ``target_for(first bytes)`` -- for content whose format is known only once it
    has arrived (a download). Whatever fails, nothing is left under the final name.
    """
    part = PartFile(folder)
    try:
        fill(part.stream)
        part.close()
        return part.publish(target_for(part.head()), overwrite=overwrite)
    except BaseException:
        part.discard()
        raise


class PartFile:
    """A temporary ``.part`` file in ``folder``, written and then published under its final name.

    Until :meth:`publish`, nothing exists under the final name; :meth:`discard`
    removes the temporary file whatever state it is in.
    """

    def __init__(self, folder: PathLike) -> None:
        folder_path = Path(os.fspath(folder)) if str(folder) else Path(".")
        handle, self.temporary = _create_part(folder_path)
        try:
            self.stream: IO[bytes] = os.fdopen(handle, "w+b")
        except BaseException:
            os.close(handle)
            os.unlink(self.temporary)
            raise
        self._published = False

    def write(self, data: bytes) -> None:
        """Append ``data``."""
        self.stream.write(data)

    def close(self) -> None:
        """All the content is written: make it durable."""
        if not self.stream.closed:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()

    def getvalue(self) -> bytes:
        """Everything written so far."""
        self.stream.flush()
        with open(self.temporary, "rb") as handle:
            return handle.read()

    def head(self, size: int = 4096) -> bytes:
        """The first bytes of the closed file (to sniff its format)."""
        with open(self.temporary, "rb") as handle:
            return handle.read(size)

    def publish(self, target: Path, *, overwrite: bool = False) -> Path:
        """Give the closed file its final name; return it.

        :raises FileExistsError: ``target`` exists and ``overwrite`` is false.
        """
        refuse_existing_file(target, overwrite)
        if overwrite:
            os.replace(self.temporary, str(target))
        else:
            _publish_exclusive(self.temporary, target)
        self._published = True
        _fsync_folder(target.parent)
        return target

    def discard(self) -> None:
        """Remove the temporary file (unless published)."""
        if not self.stream.closed:
            self.stream.close()
        if not self._published and os.path.exists(self.temporary):
            os.unlink(self.temporary)


def _create_part(folder: Path) -> Tuple[int, str]:
    """Create a new, empty ``.imageprovider-*.part`` file in ``folder``; return its descriptor and path.

    Unlike ``tempfile.mkstemp`` (owner-only files), the mode is 0o666 and the
    kernel applies the umask in force, so the saved image gets the permissions
    any new file gets -- without reading the umask, which can only be done by
    changing it for the whole process.
    """
    for _ in range(_PART_ATTEMPTS):
        path = os.path.join(str(folder), f".imageprovider-{secrets.token_hex(8)}.part")
        try:
            return os.open(path, _PART_FLAGS, 0o666), path
        except FileExistsError:
            continue  # the name is taken: draw another
    raise FileExistsError(f"No free name for a temporary file in {folder}")


def refuse_existing_file(target: Path, overwrite: bool = False) -> None:
    """Raise ``FileExistsError`` if ``target`` exists and ``overwrite`` is false."""
    if not overwrite and target.exists():
        raise _exists(target)


def _exists(target: Path) -> FileExistsError:
    return FileExistsError(f"{target} already exists; pass overwrite=True (or --overwrite) to replace it")


def _publish_exclusive(temporary: str, target: Path) -> None:
    # os.link fails if the name appeared meanwhile, unlike os.replace; file
    # systems without hard links fall back to a checked replace.
    try:
        os.link(temporary, str(target))
    except FileExistsError:
        raise _exists(target) from None
    except OSError:
        refuse_existing_file(target)
        os.replace(temporary, str(target))
    else:
        os.unlink(temporary)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (or needed) on Windows.
    if os.name != "posix":
        return
    try:
        descriptor = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def ensure_folder(path: Optional[PathLike]) -> None:
    """Create ``path`` (and parents) if it does not exist."""
    if path is not None:
        Path(os.fspath(path)).mkdir(parents=True, exist_ok=True)
