"""Banded RLE gives exactly pycocotools' strings and masks (it replaces it for big masks)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from studio.core import rle


def _coco(mask: np.ndarray) -> str:
    return coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


@pytest.mark.parametrize("case", ["empty", "full", "first_on", "noise", "blobs", "one_px",
                                  "huge_runs"])
def test_same_strings_and_masks_as_pycocotools(case, monkeypatch):
    monkeypatch.setattr(rle, "BAND_PIXELS", 97)  # many bands, borders everywhere
    rng = np.random.default_rng(0)
    h, w = 61, 47
    mask = {
        "empty": np.zeros((h, w), bool),
        "full": np.ones((h, w), bool),
        "first_on": np.eye(h, w, dtype=bool),
        "noise": rng.random((h, w)) > 0.5,
        "blobs": np.kron(rng.random((7, 5)) > 0.5, np.ones((9, 10), bool))[:h, :w],
        "one_px": np.pad(np.ones((1, 1), bool), ((30, 30), (20, 26))),
        "huge_runs": np.zeros((h, w), bool),
    }[case]
    if case == "huge_runs":
        mask[:, 3:40] = True  # runs far longer than a band, counts needing 3 groups
    expected = _coco(mask)
    assert rle.encode(mask) == expected
    assert rle.encode(np.asfortranarray(mask)) == expected
    back = rle.decode(expected, h, w)
    assert back.shape == (h, w) and np.array_equal(back, mask)


def test_large_numbers_and_negative_differences_round_trip():
    counts = np.array([0, 5, 100000, 3, 7, 2_000_000, 1, 1, 70000, 12], np.int64)
    s = rle.string_from_counts(counts)
    assert np.array_equal(rle.counts_from_string(s), counts)
    rle_obj = {"size": [int(counts.sum()), 1], "counts": s.encode("ascii")}
    assert coco_mask.area(rle_obj) == counts[1::2].sum()  # pycocotools reads it the same


def test_decode_refuses_counts_of_the_wrong_size():
    with pytest.raises(ValueError, match="pixels"):
        rle.decode(rle.string_from_counts(np.array([3, 4])), 2, 2)
