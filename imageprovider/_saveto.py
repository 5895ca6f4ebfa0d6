"""
imageprovider._saveto
~~~~~~~~~~~~~~~~~~~~~

``save_to=``: a response's images written straight into a folder as the body
arrives, so that neither the body nor the images are ever held whole.

Each image's decoded bytes go to a ``.part`` file in the folder. Once the
body is complete and valid, every file is checked (format, name free) and
only then published under its final name; if anything is wrong, the
``.part`` files are removed and the folder is left as it was.
"""

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Tuple

from . import _files
from ._files import PartFile, PathLike
from ._imagebody import Extracted
from ._imageinfo import sniff_mime_type
from .exceptions import ImageProviderError, ResponseValidationError
from .results import ImageResponse, InlineImage, expected_images, image_names, refuse_existing, request_stem

#: Builds the response from the parsed body and the images decoded on arrival.
Build = Callable[[Mapping[int, InlineImage]], ImageResponse]


class FolderSaver:
    """Saves the images of one response into ``folder`` as they arrive."""

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

    def finish(self, extracted: Mapping[int, Extracted], build: Build) -> ImageResponse:
        """The body is complete and valid: publish every image and return the file-backed response.

        Every image is first complete in its ``.part`` file (URL results are
        downloaded too) and checked; only then are they all published.

        :raises ResponseValidationError: an image is invalid or not a format the library saves (nothing is published).
        :raises ImageExpiredError: a URL result could not be downloaded (nothing is published).
        :raises FileExistsError: a target appeared meanwhile and ``overwrite`` is false (the
            images and sidecars this call had published are removed again).
        """
        probe = build({})
        names = image_names(self._stem, len(probe.images))
        staged: List[Tuple[int, PartFile, Path]] = []
        for image in probe.images:
            item = extracted.get(image.index)
            if item is not None:
                if item.error is not None:
                    raise item.error
                part = self._parts[image.index]
            else:
                # Not decoded on arrival: a URL result, or text the parser kept.
                part = PartFile(self.folder)
                self._others.append(part)
                if image.has_data:
                    part.write(image.data or b"")
                elif image.url is not None and image._fetch is not None:
                    image._fetch(image.url, part.stream)
                else:
                    raise ImageProviderError("This image has only a URL and no provider to download it with")
                part.close()
            mime_type = sniff_mime_type(part.head())
            if mime_type is None:
                raise ResponseValidationError(f"Image {image.index} is not {_files.FORMAT_NAMES}; not saving it")
            if not self.overwrite:
                refuse_existing(self.folder, names[image.index], mime_type, self.metadata)
            staged.append((image.index, part, self.folder / (names[image.index] + _files.EXTENSIONS[mime_type])))
        published: List[Path] = []
        try:
            inline: Dict[int, InlineImage] = {}
            for index, part, target in staged:
                inline[index] = InlineImage(path=part.publish(target, overwrite=self.overwrite))
                published.append(target)
            response = build(inline)
            if self.metadata:
                for image in response.images:
                    published.append(image._write_metadata(image.path or self.folder, self.overwrite))
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


def _unpublish(paths: List[Path]) -> None:
    """Remove files this call published, newest first; a removal that fails must not hide the error being raised."""
    for path in reversed(paths):
        try:
            os.unlink(str(path))
        except OSError:
            pass
    if paths:
        _files._fsync_folder(paths[0].parent)
