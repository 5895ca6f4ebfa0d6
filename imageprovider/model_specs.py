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

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Optional

__all__ = ["DEFAULT_MODEL", "MODEL_SPECS", "CustomSizeRule", "ModelSpec", "get_model_spec"]

#: The model sent when none is given. The API's own default is the retired
#: ``dall-e-2``, so the library always sends a model.
DEFAULT_MODEL = "gpt-image-2"

#: Parameters of ``/images/generations`` that every model accepts.
COMMON_GENERATION_PARAMS = frozenset({"prompt", "model", "n", "size", "quality", "user"})

_GPT_ONLY = frozenset({"output_format", "output_compression", "background", "moderation", "stream", "partial_images"})
_GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
_GPT_QUALITIES = frozenset({"low", "medium", "high", "auto"})


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
    #: Generation parameters beyond :data:`COMMON_GENERATION_PARAMS` that it accepts.
    extra_params: FrozenSet[str]
    #: ``"b64_json"`` if images always come back inline, ``"url"`` if URLs are the default.
    default_response: str
    #: Free ``WIDTHxHEIGHT`` sizes, when the model accepts them.
    custom_size: Optional[CustomSizeRule] = None
    #: Endpoints the model serves: a subset of generations, edits, variations.
    endpoints: FrozenSet[str] = field(default_factory=lambda: frozenset({"generations", "edits"}))
    #: ISO date the model was retired from OpenAI's API, if it was.
    retired: Optional[str] = None

    @property
    def accepted_params(self) -> FrozenSet[str]:
        """Every generation parameter this model accepts."""
        return COMMON_GENERATION_PARAMS | self.extra_params


def _gpt_image(name: str, custom_size: Optional[CustomSizeRule] = None) -> ModelSpec:
    return ModelSpec(
        name=name,
        prompt_max_length=32000,
        max_n=10,
        sizes=_GPT_SIZES,
        qualities=_GPT_QUALITIES,
        extra_params=_GPT_ONLY,
        default_response="b64_json",
        custom_size=custom_size,
    )


_SPECS = (
    _gpt_image("gpt-image-2", CustomSizeRule()),
    _gpt_image("gpt-image-2-2026-04-21", CustomSizeRule()),
    _gpt_image("gpt-image-1.5"),
    _gpt_image("gpt-image-1"),
    _gpt_image("gpt-image-1-mini"),
    _gpt_image("chatgpt-image-latest"),
    ModelSpec(
        name="dall-e-3",
        prompt_max_length=4000,
        max_n=1,
        sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
        qualities=frozenset({"standard", "hd", "auto"}),
        extra_params=frozenset({"response_format", "style"}),
        default_response="url",
        endpoints=frozenset({"generations"}),
        retired="2026-05-12",
    ),
    ModelSpec(
        name="dall-e-2",
        prompt_max_length=1000,
        max_n=10,
        sizes=frozenset({"256x256", "512x512", "1024x1024"}),
        qualities=frozenset({"standard", "auto"}),
        extra_params=frozenset({"response_format"}),
        default_response="url",
        endpoints=frozenset({"generations", "edits", "variations"}),
        retired="2026-05-12",
    ),
)

#: Model name -> :class:`ModelSpec`.
MODEL_SPECS: Dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get_model_spec(model: str) -> Optional[ModelSpec]:
    """Return the :class:`ModelSpec` for ``model``, or ``None`` for a model the table does not know."""
    return MODEL_SPECS.get(model)
