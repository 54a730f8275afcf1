"""Superpixel refinement: SLIC superpixels (OpenCV contrib's ximgproc) follow the image's
edges, so giving every superpixel one label snaps a ragged mask boundary onto them."""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.errors import ConfigError


def slic_segments(image: np.ndarray, region_size: int = 16, compactness: float = 10.0,
                  iterations: int = 10) -> tuple[np.ndarray, int]:
    """(H, W) int32 superpixel ids and their count. Colour images are clustered in CIELAB."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ConfigError(f"Superpixels need an 8-bit image, got {img.dtype}.")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim != 2:
        raise ConfigError(f"Superpixels need a grey or RGB image, got shape {img.shape}.")
    slic = cv2.ximgproc.createSuperpixelSLIC(img, algorithm=cv2.ximgproc.SLIC,
                                             region_size=int(region_size),
                                             ruler=float(compactness))
    slic.iterate(int(iterations))
    slic.enforceLabelConnectivity(25)
    return slic.getLabels(), int(slic.getNumberOfSuperpixels())


def refine_with_superpixels(labels: np.ndarray, image: np.ndarray,
                            probabilities: np.ndarray | None = None, region_size: int = 16,
                            compactness: float = 10.0, iterations: int = 10,
                            mode: str = "vote") -> np.ndarray:
    """One label per superpixel: the majority of its pixels' labels (``vote``, unlabelled
    counts as a label) or the class of highest mean probability (``mean``)."""
    if image is None:
        raise ConfigError("Superpixel refinement needs the image; give it with the predictions.")
    if image.shape[:2] != labels.shape:
        raise ConfigError(f"The image ({image.shape[1]}x{image.shape[0]}) and the mask "
                          f"({labels.shape[1]}x{labels.shape[0]}) differ in size.")
    seg, n = slic_segments(image, region_size, compactness, iterations)
    n = max(n, int(seg.max()) + 1)
    flat = seg.ravel()
    if mode == "vote":
        votes = np.bincount(flat * 256 + labels.ravel(), minlength=n * 256).reshape(n, 256)
        winner = votes.argmax(1).astype(np.uint8)
    elif mode == "mean":
        if probabilities is None:
            raise ConfigError("Superpixel mode 'mean' needs probabilities; use 'vote' for label "
                              "maps.")
        sums = np.stack([np.bincount(flat, weights=p.ravel(), minlength=n)
                         for p in probabilities])
        winner = sums.argmax(0).astype(np.uint8)
    else:
        raise ConfigError(f"Unknown superpixel mode {mode!r}; use 'vote' or 'mean'.")
    return winner[seg]
