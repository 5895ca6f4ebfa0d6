"""
imageprovider._saving
~~~~~~~~~~~~~~~~~~~~~

Every naming and saving policy, in one place, for results, the command line
and batches alike: file stems made from prompts, names for several images,
extensions taken from the bytes (never from the request), the refusal to
replace an existing file, sidecar metadata, and ``save_to=`` (images staged
in ``.part`` files as the body arrives, published only once all are whole).
The file system primitives (atomic writes, ``.part`` files) are in
:mod:`imageprovider._files`.
"""

import json
import os
import re
import unicodedata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _files
from ._files import PartFile, PathLike
from ._imagebody import Extracted
from ._imageinfo import EXTENSIONS, FORMAT_NAMES, sniff_mime_type
from .exceptions import ImageProviderError, ResponseValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .results import GeneratedImage, ImageResponse, ImageSource

#: Suffixes recognised as image extensions (and replaced when they do not match the bytes).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg"})
#: Longest file stem made from a prompt, in characters and in UTF-8 bytes (file
#: systems count bytes: 255 at most, with room left for "-16.webp" and ".json").
MAX_STEM_LENGTH = 80
MAX_STEM_BYTES = 200
#: Names Windows reserves, whatever the extension.
WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)


# -- names ------------------------------------------------------------------------------


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
    if not stem or stem.split(".")[0] in WINDOWS_RESERVED:
        return default
    return stem


def request_stem(request: Mapping[str, Any]) -> str:
    """The file stem for images made for ``request``: its prompt, sanitised (``image`` without one)."""
    prompt = request.get("prompt")
    return safe_stem(prompt) if isinstance(prompt, str) else "image"


def expected_images(request: Mapping[str, Any]) -> int:
    """How many images ``request`` asks for: its ``n``, or 1."""
    count = request.get("n")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def image_names(stem: str, count: int) -> List[str]:
    """File names (without extension) for ``count`` images: ``stem``, or ``stem-1``, ``stem-2``..."""
    return [image_name(stem, count, number) for number in range(1, count + 1)]


def image_name(stem: str, count: int, number: int) -> str:
    """The name of image ``number`` (from 1) of ``count``: ``stem`` alone when there is one."""
    return stem if count == 1 and number == 1 else f"{stem}-{number}"


def partial_name(stem: str, number: int) -> str:
    """The name of the ``number``-th partial image (from 1) of a stream."""
    return f"{stem}-partial-{number}"


def image_metadata(
    request: Mapping[str, Any], *, size: Optional[str], usage: Any, request_id: Optional[str], created: Optional[int]
) -> Tuple[str, Dict[str, Any]]:
    """The file stem (from the prompt) and the sidecar metadata of an image made for ``request``."""
    stem = request_stem(request)
    return stem, {
        "stem": stem,
        "prompt": request.get("prompt"),
        "model": request.get("model"),
        "parameters": dict(request),
        "size": size,
        "usage": usage,
        "request_id": request_id,
        "created": created,
    }


def with_extension(path: Path, extension: str) -> Path:
    """``path`` with the extension the bytes call for: appended, or replacing a wrong image suffix."""
    suffix = path.suffix.lower()
    if suffix == extension or (suffix == ".jpeg" and extension == ".jpg"):
        return path
    if suffix in IMAGE_SUFFIXES:
        return path.with_suffix(extension)
    return path.with_name(path.name + extension)


def resolve_target(path_or_dir: PathLike, stem: str, extension: str) -> Path:
    """Where to save: ``path_or_dir`` itself (extension fixed), or ``stem + extension`` inside it if it is a folder."""
    raw = os.fspath(path_or_dir)
    target = Path(raw)
    if target.is_dir() or raw.endswith((os.sep, "/")):
        return target / (stem + extension)
    return with_extension(target, extension)


def extension_of(data: bytes, what: str) -> str:
    """The extension for image bytes, from their first bytes.

    :raises ResponseValidationError: not a format the library saves.
    """
    mime_type = sniff_mime_type(data)
    if mime_type is None:
        raise ResponseValidationError(f"{what} is not {FORMAT_NAMES}; not saving it")
    return EXTENSIONS[mime_type]


# -- refusing to replace files ------------------------------------------------------------------


def refuse_existing(folder: Path, name: str, mime_type: Optional[str], metadata: bool) -> None:
    """Raise ``FileExistsError`` if saving image ``name`` into ``folder`` would replace a file.

    With ``mime_type`` unknown (a URL result, or an image yet to arrive), any image extension clashes.
    """
    extensions = [EXTENSIONS[mime_type]] if mime_type else sorted(set(EXTENSIONS.values()))
    candidates = [folder / (name + extension) for extension in extensions]
    if metadata:
        candidates.append(folder / (name + ".json"))
    for candidate in candidates:
        _files.refuse_existing_file(candidate)


def refuse_existing_targets(target: Optional[Path], folder: Path, stem: str, count: int, metadata: bool) -> None:
    """Before sending: refuse if an image of the request would replace a file.

    :param target: the one file asked for (an extension is fixed from the bytes), or ``None``.
    :param folder: where several images go, named from ``stem``.
    :raises FileExistsError: naming the file, saying nothing was sent.
    """
    try:
        if target is not None:
            refuse_existing(target.parent, with_extension(target, ".png").stem, None, metadata)
        else:
            for name in image_names(stem, count):
                refuse_existing(folder, name, None, metadata)
    except FileExistsError as exc:
        raise FileExistsError(f"{exc} (nothing was sent)") from None


# -- saving one image, several, and sidecars ----------------------------------------------------


def save_image(image: "GeneratedImage", path_or_dir: PathLike, *, overwrite: bool, metadata: bool) -> Path:
    """Write ``image`` to ``path_or_dir`` (a file, or a folder to put it in), atomically; return the path.

    Inline images are written from their bytes; URL results are downloaded
    beside the target and published under the name their bytes call for.
    """
    if image.has_data:
        data = image.data or b""
        target = resolve_target(path_or_dir, image.name, extension_of(data, f"Image {image.index}"))
        _files.ensure_folder(target.parent)
        saved = _files.write_atomic(target, data, overwrite=overwrite)
    elif image.url is not None:
        saved = _download_into(image, path_or_dir, overwrite)
    else:  # pragma: no cover - the response schema requires one of the two
        raise ResponseValidationError(f"Image {image.index} has neither data nor a URL")
    if metadata:
        write_sidecar(image, saved, overwrite)
    return saved


def _download_into(image: "GeneratedImage", path_or_dir: PathLike, overwrite: bool) -> Path:
    fetch = _fetcher(image.source)
    # The format is known only once the bytes arrive: download beside the
    # target, then publish under the name the bytes call for.
    probe = resolve_target(path_or_dir, image.name, ".png")
    _files.ensure_folder(probe.parent)

    def target_for(head: bytes) -> Path:
        extension = extension_of(head, f"The image downloaded from the URL of image {image.index}")
        return resolve_target(path_or_dir, image.name, extension)

    return _files.write_atomic_sniffed(probe.parent, fetch, target_for, overwrite=overwrite)


def _fetcher(source: Optional["ImageSource"]) -> Callable[[IO[bytes]], object]:
    from .results import RemoteImage  # only its type; results imports this module

    if not isinstance(source, RemoteImage) or source.fetch is None:
        raise ImageProviderError("This image has only a URL and no provider to download it with")
    return source.fetch


def sidecar_document(image: "GeneratedImage", saved: Path) -> bytes:
    """The ``.json`` sidecar of an image saved as ``saved``."""
    document = {key: value for key, value in image.metadata.items() if key != "stem"}
    document.update(file=saved.name, index=image.index, revised_prompt=image.revised_prompt, url=image.url)
    return json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")


def write_sidecar(image: "GeneratedImage", saved: Path, overwrite: bool) -> Path:
    """Write the sidecar next to ``saved``; return its path."""
    return _files.write_atomic(saved.with_suffix(".json"), sidecar_document(image, saved), overwrite=overwrite)


def save_all(
    response: "ImageResponse",
    directory: PathLike,
    *,
    stem: Optional[str] = None,
    names: Optional[Sequence[str]] = None,
    overwrite: bool = False,
    metadata: bool = False,
) -> List[Path]:
    """Save every image into ``directory`` (created if needed); return the paths in order.

    Named ``names`` when given (a batch item's id), else from ``stem`` (default:
    the prompt), with ``-1``, ``-2``... when there are several. Without
    ``overwrite``, every name is checked before anything is written.
    """
    folder = Path(os.fspath(directory))
    _files.ensure_folder(folder)
    if names is None:
        base = safe_stem(stem) if stem is not None else request_stem(response.request)
        names = image_names(base, len(response.images))
    if not overwrite:
        for image, name in zip(response.images, names):
            refuse_existing(folder, name, image.mime_type, metadata)
    return [
        save_image(image, folder / name, overwrite=overwrite, metadata=metadata)
        for image, name in zip(response.images, names)
    ]


# -- save_to= ---------------------------------------------------------------------------------

#: Builds the response from the files the images were published as, by index.
Build = Callable[[Mapping[int, Path]], "ImageResponse"]


class FolderSaver:
    """``save_to=``: saves the images of one response into ``folder`` as they arrive.

    Each image's decoded bytes go to a ``.part`` file in the folder. Once the
    body is complete and valid, every file is checked (format, name free) and
    only then published under its final name; if anything is wrong, the
    ``.part`` files are removed and the folder is left as it was.
    """

    def __init__(self, folder: PathLike, request: Mapping[str, Any], *, overwrite: bool, metadata: bool) -> None:
        self.folder = Path(os.fspath(folder))
        self.overwrite = overwrite
        self.metadata = metadata
        self._stem = request_stem(request)
        self._expected = expected_images(request)
        self._parts: Dict[int, PartFile] = {}
        self._others: List[PartFile] = []

    def check(self) -> None:
        """Before sending: create the folder and refuse names already taken (nothing is paid for in vain).

        :raises FileExistsError: a target exists and ``overwrite`` is false.
        """
        _files.ensure_folder(self.folder)
        if not self.overwrite:
            for name in image_names(self._stem, self._expected):
                refuse_existing(self.folder, name, None, self.metadata)

    def open_sink(self, index: int) -> PartFile:
        """Where image ``index``'s bytes go while the body arrives."""
        previous = self._parts.pop(index, None)
        if previous is not None:
            previous.discard()
        part = PartFile(self.folder)
        self._parts[index] = part
        return part

    def finish(self, extracted: Mapping[int, Extracted], build: Build) -> "ImageResponse":
        """The body is complete and valid: publish every image and return the file-backed response.

        Every image is first complete in its ``.part`` file (URL results are
        downloaded too) and checked; only then are they all published.

        :raises ResponseValidationError: an image is not a format the library saves (nothing is published).
        :raises ImageExpiredError: a URL result could not be downloaded (nothing is published).
        :raises FileExistsError: a target appeared meanwhile and ``overwrite`` is false (the
            images and sidecars this call had published are removed again).
        """
        probe = build({})
        names = image_names(self._stem, len(probe.images))
        staged: List[Tuple[int, PartFile, Path]] = []
        for image in probe.images:
            if image.index in extracted:
                part = self._parts[image.index]
            else:
                # Not decoded on arrival: a URL result, or text the parser kept.
                part = PartFile(self.folder)
                self._others.append(part)
                if image.has_data:
                    part.write(image.data or b"")
                else:
                    _fetcher(image.source)(part.stream)
                part.close()
            extension = extension_of(part.head(), f"Image {image.index}")
            if not self.overwrite:
                refuse_existing(self.folder, names[image.index], _mime_of(extension), self.metadata)
            staged.append((image.index, part, self.folder / (names[image.index] + extension)))
        published: List[Path] = []
        try:
            files: Dict[int, Path] = {}
            for index, part, target in staged:
                files[index] = part.publish(target, overwrite=self.overwrite)
                published.append(target)
            response = build(files)
            if self.metadata:
                for image in response.images:
                    published.append(write_sidecar(image, image.path or self.folder, self.overwrite))
        except BaseException:
            # Without overwrite, every file published so far was created by this
            # call under a name that was free: removing them restores the folder.
            # With it, what they replaced is gone either way, so they stay.
            if not self.overwrite:
                _unpublish(published)
            self.discard()
            raise
        return response

    def discard(self) -> None:
        """Remove every ``.part`` file not yet published."""
        for part in [*self._parts.values(), *self._others]:
            part.discard()


def _mime_of(extension: str) -> str:
    return next(mime_type for mime_type, known in EXTENSIONS.items() if known == extension)


def _unpublish(paths: List[Path]) -> None:
    """Remove files this call published, newest first; a removal that fails must not hide the error being raised."""
    for path in reversed(paths):
        try:
            os.unlink(str(path))
        except OSError:
            pass
    if paths:
        _files.fsync_folder(paths[0].parent)
