"""
imageprovider._files
~~~~~~~~~~~~~~~~~~~~

File system primitives for writing safely: a temporary ``.part`` file in the
target folder, flushed and fsynced, then published under its final name (and
the folder fsynced), so an interrupted save never leaves a partial file under
that name. What files are called is decided in :mod:`imageprovider._saving`.
"""

import errno
import os
import secrets
from pathlib import Path
from typing import IO, Callable, Optional, Tuple, Union

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
        fsync_folder(target.parent)
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


def open_no_follow(path: PathLike, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that never follows a symbolic link at ``path`` (a planted link could aim anywhere).

    :raises OSError: (``ELOOP``) ``path`` is a symbolic link.
    """
    name = os.fspath(path)
    if not hasattr(os, "O_NOFOLLOW") and os.path.islink(name):
        raise _is_a_link(name)
    try:
        return os.open(name, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(name):
            raise _is_a_link(name) from None
        raise


def _is_a_link(name: str) -> OSError:
    return OSError(errno.ELOOP, f"{name} is a symbolic link; imageprovider does not read or write through links")


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


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where that is impossible."""
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
