"""The typed augmentation spec: every op of the JSON spec, read by attribute, checked by
the one validator, and the transforms built from it the same as from the dict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from studio.core.errors import ConfigError
from studio.ml.augment import SampleTransform, photometric_ops, rigid_ops
from studio.ml.augment_batch import BatchAugment
from studio.ml.augment_spec import AugmentSpec, Mix, Rotation, default_spec, validate_spec


def test_every_op_and_parameter_of_the_json_spec_is_a_typed_field():
    spec = AugmentSpec.of(None)
    for op, params in default_spec().items():
        typed = spec.op(op)
        assert dataclasses.asdict(typed) == params, op
    assert isinstance(spec.rotation, Rotation) and isinstance(spec.cutmix, Mix)
    assert AugmentSpec.of(spec) is spec


def test_a_dict_is_checked_by_the_validator():
    spec = AugmentSpec.of({"rotation": {"enabled": True, "degrees": 30}})
    assert spec.rotation.enabled and spec.rotation.degrees == [-30.0, 30.0]
    with pytest.raises(ConfigError, match="'p' must be a number"):
        AugmentSpec.of({"hflip": {"p": "x"}})
    with pytest.raises(ConfigError, match="unknown augmentation"):
        AugmentSpec.of({"flip": {}})


def test_transforms_from_the_typed_spec_equal_those_from_the_dict():
    raw = {"vflip": {"enabled": True}, "rotation": {"enabled": True, "p": 0.3},
           "brightness": {"enabled": True}, "gaussian_blur": {"enabled": True}}
    typed = AugmentSpec.of(raw)
    assert [repr(t) for t in rigid_ops(raw)] == [repr(t) for t in rigid_ops(typed)]
    assert [repr(t) for t in photometric_ops(raw)] == [repr(t) for t in photometric_ops(typed)]
    image = np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    outs = []
    for spec in (raw, typed):
        torch.manual_seed(0)
        tf = SampleTransform(spec, "semantic", 16, True, [0.5] * 3, [0.5] * 3)
        outs.append(tf(image, np.zeros((24, 24), np.uint8))[0])
    assert torch.equal(outs[0], outs[1])


def test_batch_augment_reads_the_typed_mix_ops():
    spec = validate_spec({"cutmix": {"enabled": True, "p": 1.0, "alpha": 0.5}})
    batch = BatchAugment(spec, "semantic", 3)
    assert batch.enabled and batch.cutmix.alpha == 0.5 and not batch.soft_targets
    with pytest.raises(ConfigError, match="mixup works for classification only"):
        BatchAugment({"mixup": {"enabled": True}}, "semantic", 3)
    with pytest.raises(ConfigError, match="unknown task"):
        BatchAugment(spec, "detection", 3)
