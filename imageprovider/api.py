"""
imageprovider.api
~~~~~~~~~~~~~~~~~

One-call conveniences: each opens a provider configured from the environment
or config file, makes one call, and closes it again.
"""

from typing import Any

from .provider import OpenAIImageProvider
from .results import ImageResponse


def generate_image(prompt: str, **params: Any) -> ImageResponse:
    """Create images from ``prompt`` with a provider that lives for this call only.

    ``params`` are the keyword arguments of
    :meth:`OpenAIImageProvider.generate_image`.

    Usage::

        >>> import imageprovider
        >>> result = imageprovider.generate_image("A red fox in the snow", size="1024x1024")
        >>> result.images[0].mime_type
        'image/png'
    """
    with OpenAIImageProvider() as provider:
        return provider.generate_image(prompt, **params)
