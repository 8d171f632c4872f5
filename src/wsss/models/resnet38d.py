"""ResNet-38d (Wu et al., "Wider or Deeper", model A1) as EPS and PSA run it.

Parameter names follow the official PyTorch port (PSA/EPS `network/resnet38d.py`) exactly, so a
state dict saved by the official code loads with strict=True: `conv1a`, `b2`, `b2_1`, `b2_2`,
`b3`…`b3_2`, `b4`…`b4_5`, `b5`…`b5_2`, `b6`, `b7`, `bn7`. Blocks are pre-activation: each starts
with BN-ReLU (`bn_branch2a`), and the projection shortcut (`conv_branch1`) reads that activated
input. The network has no conv biases.

Geometry: conv1a keeps full resolution; b2, b3, b4 halve it (output stride 8); b5 uses dilation
2 (its first conv dilation 1), b6/b7 are bottleneck blocks with dilation 4 and spatial dropout
(0.3, 0.5) before their second and third convs. Output: ReLU(bn7(x)), 4096 channels.

Training options of the official recipe (`resnet38_eps.Net` / `resnet38_cls.Net`): every BN
runs on its ImageNet statistics with its affine parameters fixed (`freeze_bn`), and conv1a and
stage 2 are not trained (`frozen_blocks`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wsss.core.io import BadInputError, atomic_path
from wsss.models.mxnet_params import mxnet_to_resnet38d, read_params

log = logging.getLogger(__name__)

# The blocks in forward order, as (name, kind, in, mid, out, stride, first dilation, dilation).
# `mid` is unused by the bottleneck blocks, whose widths are out/4 and out/2.
_BLOCKS = (
    ("b2", "basic", 64, 128, 128, 2, 1, 1),
    ("b2_1", "basic", 128, 128, 128, 1, 1, 1),
    ("b2_2", "basic", 128, 128, 128, 1, 1, 1),
    ("b3", "basic", 128, 256, 256, 2, 1, 1),
    ("b3_1", "basic", 256, 256, 256, 1, 1, 1),
    ("b3_2", "basic", 256, 256, 256, 1, 1, 1),
    ("b4", "basic", 256, 512, 512, 2, 1, 1),
    ("b4_1", "basic", 512, 512, 512, 1, 1, 1),
    ("b4_2", "basic", 512, 512, 512, 1, 1, 1),
    ("b4_3", "basic", 512, 512, 512, 1, 1, 1),
    ("b4_4", "basic", 512, 512, 512, 1, 1, 1),
    ("b4_5", "basic", 512, 512, 512, 1, 1, 1),
    ("b5", "basic", 512, 512, 1024, 1, 1, 2),
    ("b5_1", "basic", 1024, 512, 1024, 1, 2, 2),
    ("b5_2", "basic", 1024, 512, 1024, 1, 2, 2),
    ("b6", "bottleneck", 1024, 0, 2048, 1, 4, 4),
    ("b7", "bottleneck", 2048, 0, 4096, 1, 4, 4),
)
BLOCK_NAMES = tuple(b[0] for b in _BLOCKS)
OFFICIAL_FROZEN = ("conv1a", "b2", "b2_1", "b2_2")


@dataclass
class ResNet38dConfig:
    dropout_b6: float = 0.3        # Dropout2d inside b6 (official)
    dropout_b7: float = 0.5        # Dropout2d inside b7 (official)
    # Dropout2d on the 4096-channel output, training only. resnet38_cls.Net (the CAM baseline)
    # has `dropout7` = 0.5 before GAP → fc8; as fc8 and GAP are linear, dropping features before
    # the 1×1 head is the same network. resnet38_eps.Net has none (0).
    dropout_out: float = 0.0
    freeze_bn: bool = True         # BN in eval mode, gamma/beta fixed (official: always)
    frozen_blocks: tuple[str, ...] = OFFICIAL_FROZEN  # parameters never trained (official: these)


class ResBlock(nn.Module):
    """Pre-activation block of two 3×3 convs; 1×1 projection shortcut when the shape changes."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, first_dilation: int, dilation: int):
        super().__init__()
        self.same_shape = cin == cout and stride == 1
        self.bn_branch2a = nn.BatchNorm2d(cin)
        self.conv_branch2a = nn.Conv2d(cin, mid, 3, stride, padding=first_dilation, dilation=first_dilation,
                                       bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(mid)
        self.conv_branch2b1 = nn.Conv2d(mid, cout, 3, padding=dilation, dilation=dilation, bias=False)
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(act)
        y = self.conv_branch2a(act)
        y = self.conv_branch2b1(F.relu(self.bn_branch2b1(y)))
        return shortcut + y


class BottleneckBlock(nn.Module):
    """Pre-activation 1×1 → 3×3 (dilated) → 1×1 block, widths out/4, out/2, out; always projected."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, dropout: float):
        super().__init__()
        self.bn_branch2a = nn.BatchNorm2d(cin)
        self.conv_branch2a = nn.Conv2d(cin, cout // 4, 1, stride, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(cout // 4)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(cout // 4, cout // 2, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn_branch2b2 = nn.BatchNorm2d(cout // 2)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(cout // 2, cout, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn_branch2a(x))
        shortcut = self.conv_branch1(act)
        y = self.conv_branch2a(act)
        y = self.conv_branch2b1(self.dropout_2b1(F.relu(self.bn_branch2b1(y))))
        y = self.conv_branch2b2(self.dropout_2b2(F.relu(self.bn_branch2b2(y))))
        return shortcut + y


class ResNet38d(nn.Module):
    """(N, 3, H, W) ImageNet-normalised RGB → (N, 4096, H/8, W/8)."""

    out_channels = 4096
    output_stride = 8

    def __init__(self, config: ResNet38dConfig | None = None):
        super().__init__()
        self.config = config or ResNet38dConfig()
        unknown = set(self.config.frozen_blocks) - set(("conv1a",) + BLOCK_NAMES)
        if unknown:
            raise ValueError(f"unknown ResNet-38d blocks {sorted(unknown)} in frozen_blocks; "
                             f"choose from conv1a, {', '.join(BLOCK_NAMES)}")
        self.conv1a = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        dropout = {"b6": self.config.dropout_b6, "b7": self.config.dropout_b7}
        for name, kind, cin, mid, cout, stride, first_dil, dil in _BLOCKS:
            if kind == "basic":
                block = ResBlock(cin, mid, cout, stride, first_dil, dil)
            else:
                block = BottleneckBlock(cin, cout, stride, dil, dropout[name])
            self.add_module(name, block)
        self.bn7 = nn.BatchNorm2d(4096)
        self.dropout_out = nn.Dropout2d(self.config.dropout_out)
        self._apply_freezing()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1a(x)
        for name in BLOCK_NAMES:
            x = getattr(self, name)(x)
        return self.dropout_out(F.relu(self.bn7(x)))

    def _apply_freezing(self) -> None:
        for name in self.config.frozen_blocks:
            for p in getattr(self, name).parameters():
                p.requires_grad_(False)
        if self.config.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> "ResNet38d":
        # The official net re-applies its freezing on every train() call; doing the same keeps a
        # frozen BN on its ImageNet statistics whatever a caller toggles.
        super().train(mode)
        self._apply_freezing()
        return self


def fill_bn_counters(state: dict, model: nn.Module) -> dict:
    """Add the `num_batches_tracked` buffers `state` lacks (MXNet and pre-0.4.1 torch have none).

    They carry no weights (only BN momentum=None reads them), so 0 is a faithful value.
    """
    state = dict(state)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    return state


def load_resnet38d_weights(model: ResNet38d, weights: str | Path) -> None:
    """Load ImageNet weights strictly: an MXNet `.params` file (ademxapp's
    ilsvrc-cls_rna-a1_cls1000_ep-0001.params) or a torch file in the resnet38d key layout."""
    weights = Path(weights)
    if not weights.exists():
        raise BadInputError(f"{weights}: ResNet-38d weights file is missing; fix classifier.pretrained "
                            "(the ImageNet .params file or a .pth from `wsss convert-mxnet`)")
    if weights.suffix == ".params":
        state = mxnet_to_resnet38d(read_params(weights), source=weights)
    else:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as err:
            raise BadInputError(f"{weights}: cannot read ResNet-38d weights ({err}); re-download or "
                                "re-convert the file") from err
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise BadInputError(f"{weights}: not a state dict; give a ResNet-38d .params or .pth file")
    state = fill_bn_counters(state, model)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a shape mismatch
        raise BadInputError(f"{weights}: tensor shapes do not fit ResNet-38d ({str(err)[:300]}); give "
                            "ImageNet ResNet-38d weights") from err
    if missing or unexpected:
        raise BadInputError(
            f"{weights}: not ResNet-38d backbone weights (missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(unexpected)[:3]}); classifier.pretrained takes ImageNet ResNet-38d weights (.params or "
            "converted .pth); a trained official EPS/cls checkpoint goes through "
            "wsss.models.official.import_official_checkpoint instead")
    log.info("loaded ResNet-38d weights from %s", weights)


def check_resnet38d_state(state: dict, source: str | os.PathLike) -> None:
    """BadInputError naming `source` unless `state` has exactly resnet38d's keys and shapes."""
    with torch.device("meta"):  # shapes only: no 500 MB of weights allocated
        expected = {k: tuple(v.shape) for k, v in ResNet38d().state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        raise BadInputError(f"{source}: not ResNet-38d (model A1) weights: missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]}, wrong shapes {wrong[:3]}; give "
                            "ilsvrc-cls_rna-a1_cls1000_ep-0001.params")


def convert_mxnet(in_params: str | os.PathLike, out_pth: str | os.PathLike) -> int:
    """Convert the MXNet ResNet-38 `.params` to a torch state dict in the resnet38d layout.

    The result loads with strict=True into `ResNet38d`. Written atomically; returns the number of
    tensors written.
    """
    state = mxnet_to_resnet38d(read_params(in_params), source=in_params)
    check_resnet38d_state(state, in_params)
    with atomic_path(out_pth) as tmp:
        torch.save(state, tmp)
    return len(state)
