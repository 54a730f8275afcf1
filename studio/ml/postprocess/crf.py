"""Dense CRF by mean-field inference, after Krähenbühl and Koltun (2011).

The fully connected CRF has unary potentials -log P(label) from the network and Potts
pairwise potentials weighted by two Gaussian kernels: an appearance kernel over position
and colour (pixels that are close and look alike want the same label) and a smoothness
kernel over position alone. Mean-field inference updates, for every pixel i and label l,

    Q_i(l)  ∝  P_i(l) · exp( w_a · Σ_j k_a(i, j) Q_j(l)  +  w_s · Σ_j k_s(i, j) Q_j(l) )

(under the Potts model the messages of the other labels add the same amount to every
label, so they cancel in the normalisation). The two sums are filters of the label
marginals: the smoothness kernel is a Gaussian blur, and the appearance kernel is an
edge-preserving filter guided by the image — here OpenCV's guided filter
(``cv2.ximgproc.guidedFilter``, He et al. 2013; ``bilateral_sigma`` is its radius in
pixels and ``color_sigma`` squared its regularisation), a linear-time stand-in for the
permutohedral-lattice bilateral filter of the paper. (The domain transform was tried
first: its geodesic distance adds up pixel noise, so on a noisy image its reach shrinks
to a few pixels.) Both filters are normalised (their weights sum to one), so the weights
are on the scale of a log probability: weight 5 outweighs a 0.99 vs 0.01 disagreement
when the whole neighbourhood agrees. Because normalised filters keep marginals summing to
one, the last class's message is one minus the others', which saves one filtering per
iteration.
"""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.errors import ConfigError


def _guide(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ConfigError(f"The dense CRF needs an 8-bit image, got {img.dtype}.")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ConfigError(f"The dense CRF needs a grey or RGB image, got shape {img.shape}.")
    return np.ascontiguousarray(img)


def dense_crf(probabilities: np.ndarray, image: np.ndarray, iterations: int = 5,
              smooth_sigma: float = 3.0, smooth_weight: float = 1.0,
              bilateral_sigma: float = 40.0, color_sigma: float = 15.0,
              bilateral_weight: float = 5.0) -> np.ndarray:
    """Refined probabilities (C, H, W) float32 of `probabilities` (C, H, W) given the image
    (H, W) or (H, W, 3) uint8. Sigmas are in pixels (spatial) and grey levels (colour).

    On images of 256 px and more (short side) the appearance messages are computed at a
    reduced scale (a factor of 2 up to 511 px, 4 beyond) and interpolated back: they are
    smooth over ``bilateral_sigma`` pixels anyway, and the unaries keep full resolution.
    """
    probs = np.asarray(probabilities, dtype=np.float32)
    if probs.ndim != 3:
        raise ConfigError(f"Probabilities must be (classes, height, width), got {probs.shape}.")
    guide = _guide(image)
    C, H, W = probs.shape
    if guide.shape[:2] != (H, W):
        raise ConfigError(f"The image ({guide.shape[1]}x{guide.shape[0]}) and the probability "
                          f"maps ({W}x{H}) differ in size.")
    if C < 2:
        return probs.copy()
    unary = np.log(np.clip(probs, 1e-6, 1.0))
    q = _softmax(unary)
    scale = 1 if min(H, W) < 256 else (2 if min(H, W) < 512 else 4)
    small = (max(1, W // scale), max(1, H // scale))
    if scale > 1:
        guide = cv2.resize(guide, small, interpolation=cv2.INTER_AREA)
    appearance = cv2.ximgproc.createGuidedFilter(
        guide, max(1, int(round(bilateral_sigma / scale))), float(color_sigma) ** 2)

    def appearance_filter(x: np.ndarray) -> np.ndarray:
        if scale == 1:
            return appearance.filter(x)
        out = appearance.filter(cv2.resize(x, small, interpolation=cv2.INTER_AREA))
        return cv2.resize(out, (W, H), interpolation=cv2.INTER_LINEAR)

    ksize = 2 * int(np.ceil(3 * smooth_sigma)) + 1
    for _ in range(int(iterations)):
        logits = unary.copy()
        if bilateral_weight > 0:
            logits += bilateral_weight * _messages(q, appearance_filter)
        if smooth_weight > 0:
            logits += smooth_weight * _messages(
                q, lambda x: cv2.GaussianBlur(x, (ksize, ksize), float(smooth_sigma)))
        q = _softmax(logits)
    return q


def _messages(q: np.ndarray, filt) -> np.ndarray:
    """Filtered marginals (C, H, W): the first C - 1 planes by `filt` (in chunks of up to
    four channels, what OpenCV filters take), the last as one minus their sum."""
    C = q.shape[0]
    out = np.empty_like(q)
    for start in range(0, C - 1, 4):
        stop = min(start + 4, C - 1)
        chunk = q[start] if stop - start == 1 else cv2.merge(list(q[start:stop]))
        res = filt(chunk)
        if res.ndim == 2:
            out[start] = res
        else:
            out[start:stop] = np.moveaxis(res, 2, 0)
    np.subtract(1.0, out[:C - 1].sum(axis=0), out=out[C - 1])
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the first axis of (C, H, W)."""
    z = logits - logits.max(axis=0)
    np.exp(z, out=z)
    z /= z.sum(axis=0)
    return z
