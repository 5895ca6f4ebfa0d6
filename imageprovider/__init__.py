"""
imageprovider
~~~~~~~~~~~~~

A small, synchronous client for OpenAI's image API, built on ``requests``.
Start with :class:`OpenAIImageProvider` or the one-call :func:`generate_image`.
"""

import logging

from .__version__ import __version__
from ._config import Limits
from ._inputs import image_data_url
from .api import generate_image
from .azure import AzureOpenAIImageProvider
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConfigurationWarning,
    ConflictError,
    ContentPolicyError,
    ImageExpiredError,
    ImageProviderError,
    ImageProviderWarning,
    InternalServerError,
    ModelShutdownWarning,
    NotFoundError,
    PermissionDeniedError,
    ProviderClosedError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    UnprocessableEntityError,
)
from .model_specs import DEFAULT_MODEL, MODEL_SPECS, TABLE_CHECKED, ModelSpec, ModelTable
from .provider import OpenAIImageProvider
from .results import GeneratedImage, ImageResponse, ImageUsage, RateLimits, SvgUsage
from .streaming import Completed, ImageStream, PartialImage

__all__ = [
    "__version__",
    "DEFAULT_MODEL",
    "MODEL_SPECS",
    "TABLE_CHECKED",
    "ModelSpec",
    "ModelTable",
    "OpenAIImageProvider",
    "AzureOpenAIImageProvider",
    "generate_image",
    "image_data_url",
    "ImageStream",
    "PartialImage",
    "Completed",
    "GeneratedImage",
    "ImageResponse",
    "ImageUsage",
    "RateLimits",
    "SvgUsage",
    "ImageProviderError",
    "ConfigurationError",
    "ProviderClosedError",
    "RequestValidationError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "ContentPolicyError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "ImageExpiredError",
    "ResponseValidationError",
    "ImageProviderWarning",
    "ModelShutdownWarning",
    "ConfigurationWarning",
    "Limits",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
