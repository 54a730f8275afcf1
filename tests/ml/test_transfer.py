"""Transfer learning: pretrained weights (never downloaded here), checkpoints, freezing."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v3_large, resnet18

from studio.core.errors import ConfigError, StudioError, WeightsUnavailableError
from studio.ml.models import (
    build_model,
    freeze,
    get_spec,
    load_checkpoint_weights,
    optimizer_param_groups,
    parameter_groups,
    set_frozen_bn_eval,
    stages,
    transfer,
    unfreeze_all,
    weights_file,
)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache; any download attempt fails like an offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("STUDIO_OFFLINE", raising=False)

    def offline(url, dst, hash_prefix):
        raise URLError("network is unreachable")

    monkeypatch.setattr(transfer, "_download", offline)
    return Path(torch.hub.get_dir())


def _cache_fake_weights(name: str, state: dict) -> Path:
    path = weights_file(get_spec(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_weights_file_is_in_the_hub_cache(hub):
    path = weights_file(get_spec("resnet18"))
    assert path == hub / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(ConfigError):
        weights_file(get_spec("unet"))


def test_offline_without_cache_names_file_folder_and_url(hub, monkeypatch):
    with pytest.raises(WeightsUnavailableError) as err:
        build_model("resnet18", 3, pretrained="imagenet")
    msg = str(err.value)
    assert "resnet18-f37072fd.pth" in msg and str(hub / "checkpoints") in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert "unreachable" in msg

    def must_not_download(*args):
        raise AssertionError("download attempted although STUDIO_OFFLINE is set")

    monkeypatch.setattr(transfer, "_download", must_not_download)
    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="mobilenet_v3_large-8738ca79.pth"):
        build_model("deeplabv3_mobilenet_v3_large", 3, pretrained="imagenet")


def test_cached_weights_load_into_backbone(hub):
    torch.manual_seed(0)
    ref = resnet18().state_dict()
    _cache_fake_weights("resnet18", ref)
    model = build_model("resnet18", 5, pretrained="imagenet")
    own = model.state_dict()
    for key, value in ref.items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    assert model.fc.out_features == 5
    grey = build_model("resnet18", 5, in_channels=1, pretrained="imagenet")
    # averaged over RGB and scaled by 3: a grey image gives the RGB model's response
    assert torch.allclose(grey.conv1.weight[:, 0], ref["conv1.weight"].sum(1), atol=1e-6)
    x = torch.rand(1, 1, 32, 32)
    model.eval()
    grey.eval()
    grey.fc.load_state_dict(model.fc.state_dict())
    assert torch.allclose(grey(x), model(x.repeat(1, 3, 1, 1)), atol=1e-4)
    unet = build_model("unet_resnet18", 2, pretrained="imagenet")
    assert torch.equal(unet.encoder.layer3[1].conv2.weight, ref["layer3.1.conv2.weight"])


def test_download_path_is_used_when_not_cached(hub, monkeypatch):
    torch.manual_seed(1)
    ref = mobilenet_v3_large().state_dict()
    calls = []

    def fake_download(url, dst, hash_prefix):
        calls.append((url, hash_prefix))
        torch.save(ref, dst)

    monkeypatch.setattr(transfer, "_download", fake_download)
    model = build_model("deeplabv3_mobilenet_v3_large", 3, pretrained="imagenet")
    assert calls == [("https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth",
                      "8738ca79")]
    got = model.net.backbone["4"].block[0][0].weight
    assert torch.equal(got, ref["features.4.block.0.0.weight"])
    build_model("mobilenet_v3_large", 3, pretrained="imagenet")  # now cached
    assert len(calls) == 1


def _state(model: nn.Module, prefix: str = "") -> dict:
    return {prefix + k: v.clone() for k, v in model.state_dict().items()}


def test_load_checkpoint_weights_our_format_and_raw(tmp_path):
    torch.manual_seed(2)
    source = build_model("unet", 4, options={"depth": 2, "width": 8})
    ckpt = tmp_path / "best.pt"
    torch.save({"model": _state(source, "module."), "optimizer": {"state": {}},
                "epoch": 3, "config": {"model": "unet"}}, ckpt)
    target = build_model("unet", 2, options={"depth": 2, "width": 8})
    report = load_checkpoint_weights(target, ckpt)
    assert report.unmatched == ["head.weight", "head.bias"]  # other number of classes
    assert not report.missing and not report.unexpected
    assert len(report.matched) == len(target.state_dict()) - 2
    assert torch.equal(target.downs[1][1][0].weight, source.downs[1][1][0].weight)
    assert "shape mismatch" in report.summary() and "head.weight" in report.summary()
    raw = tmp_path / "raw.pth"
    torch.save(_state(source), raw)
    same = build_model("unet", 4, pretrained=str(raw), options={"depth": 2, "width": 8})
    assert same.studio_load_report.summary().startswith("loaded")
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(same.eval()(x), source.eval()(x))


def test_load_checkpoint_rejects_bad_files(tmp_path):
    model = build_model("simple_cnn", 2, options={"width": 4})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(StudioError, match="not a readable PyTorch checkpoint"):
        load_checkpoint_weights(model, junk)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": Path("x")}, unsafe)  # needs a pickle global: refused
    with pytest.raises(StudioError, match="not a readable"):
        load_checkpoint_weights(model, unsafe)
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(StudioError, match="no model weights"):
        load_checkpoint_weights(model, empty)
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint_weights(model, tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"something.else": torch.zeros(3)}, other)
    with pytest.raises(StudioError, match="no tensor"):
        build_model("simple_cnn", 2, pretrained=str(other))


def _train_steps(model: nn.Module, groups: list[dict], steps: int = 3) -> None:
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=0.05)
    for _ in range(steps):
        model.train()
        set_frozen_bn_eval(model)
        loss = model(torch.randn(4, 3, 32, 32)).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize(("mode", "n"), [("backbone", 0), ("first_n_stages", 3),
                                          ("all_but_head", 0)])
def test_frozen_weights_stay_bit_identical(mode, n):
    torch.manual_seed(3)
    model = build_model("resnet18", 3)
    freeze(model, mode, n)
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    assert frozen and "fc.weight" not in frozen
    before = _state(model)
    groups = optimizer_param_groups(model, lr=0.1, weight_decay=0.05)
    assert all(p.requires_grad for g in groups for p in g["params"])
    _train_steps(model, groups)
    after = model.state_dict()
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    # the running statistics of frozen BN layers did not move either
    frozen_bn = [k.rsplit(".", 1)[0] for k in frozen if k.endswith("bn1.weight")]
    for prefix in frozen_bn:
        assert torch.equal(before[f"{prefix}.running_mean"], after[f"{prefix}.running_mean"])
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    trainable = [k for k, p in model.named_parameters() if p.requires_grad]
    assert any(not torch.equal(before[k], after[k]) for k in trainable)


def test_finetune_groups_and_unfreeze():
    model = build_model("mobilenet_v3_small", 3)
    freeze(model, "backbone")
    groups = optimizer_param_groups(model, lr=0.01)
    assert [g["name"] for g in groups] == ["head"]
    unfreeze_all(model)
    groups = optimizer_param_groups(model, lr=0.01, backbone_lr_factor=0.1, weight_decay=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == pytest.approx(0.001)
    assert by_name["head"]["lr"] == 0.01 and by_name["head"]["weight_decay"] == 1e-4
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))
    with pytest.raises(ConfigError):
        optimizer_param_groups(model, lr=0.01, backbone_lr_factor=-1)


def test_freeze_errors_and_wrappers():
    model = build_model("simple_cnn", 2, options={"width": 4})
    wrapped = nn.DataParallel(model)  # no GPU needed: it just wraps
    assert len(stages(wrapped)) == 3
    assert parameter_groups(wrapped)["head"]
    with pytest.raises(ConfigError, match="n_stages"):
        freeze(wrapped, "first_n_stages", 4)
    with pytest.raises(ConfigError, match="freeze mode"):
        freeze(model, "encoder")
    freeze(wrapped, "backbone")
    model.train()
    assert set_frozen_bn_eval(model) == 3
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(ConfigError, match="build_model"):
        parameter_groups(nn.Linear(2, 2))
