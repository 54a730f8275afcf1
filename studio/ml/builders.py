"""What a run is built from: model, optimizer and loss, from a config (the task's
criterion, meter and evaluation forward are its task object's: `studio.ml.tasks.registry`).

The training loop, evaluation and prediction all build through here, so a model trained
by `fit` is the model that `predict` loads.
"""

from __future__ import annotations

import torch
from torch import nn

from studio.core.errors import CheckpointError, ConfigError
from studio.ml.config import RunConfig
from studio.ml.losses import build_loss as loss_from_config
from studio.ml.models import transfer
from studio.ml.models.registry import build_model, check_model, get_spec
from studio.ml.tasks import IGNORE_INDEX

# 1e9 float32 parameters are 4 GB of weights, and 16 GB with gradients and Adam's state
MAX_PARAMETERS = 1_000_000_000


def build_optimizer(model: nn.Module, cfg: RunConfig, backbone_lr_factor: float = 1.0
                    ) -> torch.optim.Optimizer:
    """The configured optimizer over the model's trainable parameters (backbone / head
    groups, backbone at lr * backbone_lr_factor)."""
    opt = cfg.optimizer
    lr, wd = opt.lr, opt.weight_decay
    groups = transfer.optimizer_param_groups(model, lr, backbone_lr_factor, wd)
    if not groups:
        raise ConfigError("Every parameter of the model is frozen: nothing to train. Choose a "
                          "freeze mode that leaves the head trainable.")
    for group in groups:
        group["initial_lr"] = group["lr"]
    name, momentum, eps = opt.name, opt.momentum, opt.eps
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=wd,
                               nesterov=opt.nesterov and momentum > 0)
    betas = (opt.betas[0], opt.betas[1])
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=momentum, eps=eps,
                                   weight_decay=wd)
    raise ConfigError(f"Unknown optimizer {name!r}; use sgd, adam, adamw or rmsprop.")

def model_options(cfg: RunConfig) -> dict:
    """The model options of a config, with its "dropout" passed on where the model has one."""
    options = dict(cfg.model.options)
    if cfg.model.dropout is not None and "dropout" in get_spec(cfg.model.name).default_options:
        options.setdefault("dropout", cfg.model.dropout)
    return options


def check_buildable(run: RunConfig, num_classes: int, in_channels: int,
                    pretrained: bool = True) -> int:
    """Build the configured model on PyTorch's "meta" device (nothing is allocated) with
    the run's classes and channels: options the builders refuse, or a model of more than
    MAX_PARAMETERS parameters, are a ConfigError before any run record exists. With
    `pretrained`, a checkpoint file named by the config must hold weights. The number of
    parameters otherwise."""
    name, weights = run.model.name, run.model.pretrained
    if pretrained and weights not in (None, "imagenet", "coco"):
        try:
            transfer.checkpoint_tensors(weights)
        except (ConfigError, CheckpointError) as exc:
            raise ConfigError(f"'pretrained': {exc}", path="pretrained") from exc
    try:
        count = check_model(name, num_classes, in_channels, options=model_options(run))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"Model {name!r} cannot be built with these options: {exc}",
                          path="model_options") from exc
    if count > MAX_PARAMETERS:
        raise ConfigError(f"Model {name!r} with these options has {count:,} parameters, more "
                          f"than the {MAX_PARAMETERS:,} a run may train; make it smaller "
                          "(fewer or narrower layers).", path="model_options")
    return count


def make_model(cfg: RunConfig, num_classes: int, in_channels: int, pretrained=None
               ) -> nn.Module:
    """Build the configured model (pretrained weights only when asked for)."""
    return build_model(cfg.model.name, num_classes, in_channels=in_channels,
                       pretrained=pretrained, options=model_options(cfg))



def build_loss(cfg: RunConfig, num_classes: int) -> nn.Module:
    """The configured loss on (logits, targets)."""
    return loss_from_config(cfg.loss, cfg.task, num_classes, ignore_index=IGNORE_INDEX)


class Criterion(nn.Module):
    """The training objective of one step: `criterion(model, images, targets) -> loss`.

    For classification and semantic segmentation it is the configured loss on the model's
    logits; tasks whose models compute their own losses (detection) supply their own
    criterion with the same call (`studio.ml.tasks.registry`). `loss_fn` (logits, targets)
    -> loss is what evaluation reports, or None where the task has no validation loss.
    """

    def __init__(self, loss_fn: nn.Module | None) -> None:
        super().__init__()
        self.loss_fn = loss_fn

    def forward(self, model: nn.Module, images, targets) -> torch.Tensor:
        return self.loss_fn(model(images).float(), targets)


class DetectionCriterion(Criterion):
    """Detection models compute their own losses in training mode (RPN objectness and
    box regression, box classification and regression, masks): the step minimises their
    sum. There is no validation loss (`loss_fn` is None); mAP measures validation."""

    def __init__(self) -> None:
        super().__init__(None)

    def forward(self, model: nn.Module, images, targets) -> torch.Tensor:
        losses = model(images, targets)
        return torch.stack([v.float() for v in losses.values()]).sum()
