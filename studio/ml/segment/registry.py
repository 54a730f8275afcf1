"""The promptable segmentation models we offer, by name: what they are, how big, under
which licence, which files (with their SHA-256) they need, and how to run them.

The real models are osam's (EfficientSAM, SAM, SAM 2.1): their files, hashes and folder
are read from osam itself, so a download, an import from a file and a run all use osam's
own blob paths. Another model (a test's tiny ONNX pair, a future model) plugs in with
`register_model`: a `ModelSpec` whose `osam_type` is an osam `Model` subclass with its own
blobs. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from studio.core.errors import NotFoundError

DEFAULT_MODEL = "efficientsam:10m"  # the smallest that gives good masks on a CPU


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its role (encoder, decoder), where it comes from, its hash."""

    role: str
    url: str
    sha256: str  # hex digest, no "sha256:" prefix

    @property
    def filename(self) -> str:
        return os.path.basename(self.url.split("?")[0]) or self.role


@dataclass(frozen=True)
class ModelSpec:
    """A model the person can choose."""

    name: str  # osam's name, e.g. "efficientsam:10m"
    title: str
    size_mb: int  # download size, as osam's model library gives it
    licence: str
    licence_url: str
    osam_type: type  # the osam Model subclass that runs it
    files: tuple[ModelFile, ...] = field(default=())
    note: str = ""

    @property
    def size_text(self) -> str:
        return f"about {self.size_mb / 1000:.1f} GB" if self.size_mb >= 1000 else \
            f"about {self.size_mb} MB"


def files_of(osam_type: type) -> tuple[ModelFile, ...]:
    """The files of an osam model class, read from its blob table (osam keeps it in the
    class attribute `_blobs` and has no public accessor for it)."""
    return tuple(ModelFile(role, b.url, b.hash.split(":", 1)[-1])
                 for role, b in osam_blobs(osam_type).items())


def osam_blobs(osam_type: type) -> dict:
    """osam's {role: Blob} table of a model class: the blobs osam downloads, checks and
    loads (osam has no public accessor for it; read-only here)."""
    return dict(osam_type._blobs)


# name, title, size (MB, osam's model library), note. Sizes: download sizes osam lists.
_OFFERED = (
    ("efficientsam:10m", "EfficientSAM 10M", 40, "smallest; default on a CPU"),
    ("efficientsam:latest", "EfficientSAM 30M", 100, ""),
    ("sam2:tiny", "SAM 2.1 tiny", 150, ""),
    ("sam2:small", "SAM 2.1 small", 170, ""),
    ("sam2:latest", "SAM 2.1 base+", 300, ""),
    ("sam2:large", "SAM 2.1 large", 870, "slow on a CPU"),
    ("sam:100m", "SAM ViT-B (quantized)", 100, ""),
    ("sam:300m", "SAM ViT-L (quantized)", 310, ""),
    ("sam:latest", "SAM ViT-H (quantized)", 630, "slow on a CPU"),
)

_REGISTRY: dict[str, ModelSpec] = {}


def _osam_specs() -> dict[str, ModelSpec]:
    from osam import apis

    specs = {}
    for name, title, size_mb, note in _OFFERED:
        cls = apis.get_model_type_by_name(name)
        meta = cls.metadata
        specs[name] = ModelSpec(name=name, title=title, size_mb=size_mb,
                                licence=meta.license_name, licence_url=meta.license_url,
                                osam_type=cls, files=files_of(cls), note=note)
    return specs


def _ensure() -> dict[str, ModelSpec]:
    if not _REGISTRY:
        _REGISTRY.update(_osam_specs())
    return _REGISTRY


def register_model(spec: ModelSpec) -> None:
    """Offer another model (same path as the real ones: files, hash check, running)."""
    _ensure()
    if not spec.files:
        spec = ModelSpec(**{**spec.__dict__, "files": files_of(spec.osam_type)})
    _REGISTRY[spec.name] = spec


def unregister_model(name: str) -> None:
    _ensure().pop(name, None)


def offered_names() -> list[str]:
    """The names of the models offered, without importing osam (cheap)."""
    extra = [n for n in _REGISTRY if n not in {o[0] for o in _OFFERED}]
    return [o[0] for o in _OFFERED] + extra


def list_models() -> list[ModelSpec]:
    return list(_ensure().values())


def get_model_spec(name: str) -> ModelSpec:
    specs = _ensure()
    if name not in specs:
        raise NotFoundError(f"No segmentation model {name!r}; choose one of "
                            f"{', '.join(specs)} (studio-cli models list).")
    return specs[name]
