"""
imageprovider.model_specs
~~~~~~~~~~~~~~~~~~~~~~~~~

Everything the library knows about each image model, in one table.
Adding a model, or retiring one, is a change to :data:`MODEL_SPECS` alone.

Facts come from the official API description and reference (see the README):
GPT image models return base64 only and accept the GPT-only parameters;
DALL-E models return URLs by default and accept ``response_format`` (and
``style`` for dall-e-3). DALL-E 2 and 3 were retired from OpenAI's API on
2026-05-12; they stay here for compatible servers and older deployments.

Models not in the table (compatible servers, future models) are checked
against the JSON Schemas only.
"""

from dataclasses import dataclass
from typing import Dict, FrozenSet, Mapping, Optional

__all__ = ["DEFAULT_MODEL", "MODEL_SPECS", "CustomSizeRule", "InputRule", "ModelSpec", "get_model_spec"]

#: The model sent when none is given. The API's own default is the retired
#: ``dall-e-2``, so the library always sends a model.
DEFAULT_MODEL = "gpt-image-2"

#: Parameters every model accepts on each endpoint (files such as ``image`` and ``mask`` aside).
COMMON_PARAMS: Mapping[str, FrozenSet[str]] = {
    "generations": frozenset({"prompt", "model", "n", "size", "quality", "user"}),
    "edits": frozenset({"prompt", "model", "n", "size", "quality", "user"}),
    "variations": frozenset({"model", "n", "size", "user"}),
}

MB = 1024 * 1024
# For edits, moderation exists only in the JSON form; the multipart schema rejects it.
_GPT_ONLY = frozenset({"output_format", "output_compression", "background", "moderation", "stream", "partial_images"})
_GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
_GPT_QUALITIES = frozenset({"low", "medium", "high", "auto"})
_ANY_IMAGE = frozenset({"image/png", "image/jpeg", "image/webp"})
_PNG_ONLY = frozenset({"image/png"})


@dataclass(frozen=True)
class CustomSizeRule:
    """Limits on free ``WIDTHxHEIGHT`` sizes for models that accept them."""

    #: Width and height must both be multiples of this.
    multiple: int = 16
    #: Longest edge divided by shortest edge may not exceed this (3 means 3:1).
    max_aspect_ratio: float = 3.0
    #: No edge may be longer than this many pixels.
    max_edge: int = 3840
    #: Bounds on width * height (3840x2160 is the maximum resolution).
    min_pixels: int = 655_360
    max_pixels: int = 3840 * 2160


@dataclass(frozen=True)
class InputRule:
    """What input images (edits, variations) the model takes."""

    #: Most images in one request.
    max_images: int = 16
    #: Largest image file, in bytes.
    max_bytes: int = 50 * MB
    #: Accepted formats, as sniffed MIME types.
    formats: FrozenSet[str] = _ANY_IMAGE
    #: Whether every input must be square.
    square: bool = False


#: Limits on an edit mask: a PNG with an alpha channel, the size of the first image.
MASK_MAX_BYTES = 4 * MB


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts and returns."""

    name: str
    #: Longest prompt, in characters.
    prompt_max_length: int
    #: Largest ``n``.
    max_n: int
    #: Fixed sizes the model accepts.
    sizes: FrozenSet[str]
    #: ``quality`` values the model accepts.
    qualities: FrozenSet[str]
    #: Endpoint -> parameters beyond :data:`COMMON_PARAMS` the model accepts there.
    #: The endpoints the model serves are this mapping's keys.
    extra_params: Mapping[str, FrozenSet[str]]
    #: ``"b64_json"`` if images always come back inline, ``"url"`` if URLs are the default.
    default_response: str
    #: Free ``WIDTHxHEIGHT`` sizes, when the model accepts them.
    custom_size: Optional[CustomSizeRule] = None
    #: Input images for edits and variations.
    inputs: InputRule = InputRule()
    #: Whether edits may reference images in a JSON body (GPT image models) or need multipart.
    json_edits: bool = True
    #: ISO date the model was retired from OpenAI's API, if it was.
    retired: Optional[str] = None

    @property
    def endpoints(self) -> FrozenSet[str]:
        """The endpoints the model serves: some of generations, edits, variations."""
        return frozenset(self.extra_params)

    def accepted_params(self, endpoint: str = "generations") -> FrozenSet[str]:
        """Every parameter this model accepts on ``endpoint`` (empty if it does not serve it)."""
        if endpoint not in self.extra_params:
            return frozenset()
        return COMMON_PARAMS[endpoint] | self.extra_params[endpoint]


def _gpt_image(
    name: str, custom_size: Optional[CustomSizeRule] = None, edit_extra: FrozenSet[str] = frozenset()
) -> ModelSpec:
    return ModelSpec(
        name=name,
        prompt_max_length=32000,
        max_n=10,
        sizes=_GPT_SIZES,
        qualities=_GPT_QUALITIES,
        extra_params={"generations": _GPT_ONLY, "edits": _GPT_ONLY | edit_extra},
        default_response="b64_json",
        custom_size=custom_size,
    )


# input_fidelity: documented for gpt-image-1 and 1.5; gpt-image-2 rejects it and
# the mini model is low-only, so it is sent for these two alone.
_FIDELITY = frozenset({"input_fidelity"})

_SPECS = (
    _gpt_image("gpt-image-2", CustomSizeRule()),
    _gpt_image("gpt-image-2-2026-04-21", CustomSizeRule()),
    _gpt_image("gpt-image-1.5", edit_extra=_FIDELITY),
    _gpt_image("gpt-image-1", edit_extra=_FIDELITY),
    _gpt_image("gpt-image-1-mini"),
    _gpt_image("chatgpt-image-latest"),
    ModelSpec(
        name="dall-e-3",
        prompt_max_length=4000,
        max_n=1,
        sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
        qualities=frozenset({"standard", "hd", "auto"}),
        extra_params={"generations": frozenset({"response_format", "style"})},
        default_response="url",
        retired="2026-05-12",
    ),
    ModelSpec(
        name="dall-e-2",
        prompt_max_length=1000,
        max_n=10,
        sizes=frozenset({"256x256", "512x512", "1024x1024"}),
        qualities=frozenset({"standard", "auto"}),
        extra_params={
            "generations": frozenset({"response_format"}),
            "edits": frozenset({"response_format"}),
            "variations": frozenset({"response_format"}),
        },
        default_response="url",
        inputs=InputRule(max_images=1, max_bytes=4 * MB, formats=_PNG_ONLY, square=True),
        json_edits=False,
        retired="2026-05-12",
    ),
)

#: Model name -> :class:`ModelSpec`.
MODEL_SPECS: Dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get_model_spec(model: str) -> Optional[ModelSpec]:
    """Return the :class:`ModelSpec` for ``model``, or ``None`` for a model the table does not know."""
    return MODEL_SPECS.get(model)
