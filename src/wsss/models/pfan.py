"""PFAN: Pyramid Feature Attention Network for saliency detection (Zhao & Wu, CVPR 2019).

Structure as the paper describes it (Fig. 2-4 of the paper):

- VGG-16 backbone (torchvision's layer layout). Low-level features: conv1_2 and conv2_2.
  High-level features: conv3_3, conv4_3, conv5_3.
- Low-level path: 3x3 conv to 64 + BN on conv1_2 and on conv2_2 (upsampled to conv1_2's size),
  concatenated, 3x3 conv to 64.
- CPFE (context-aware pyramid feature extraction) on each high-level level: a 1x1 conv plus 3x3
  convs dilated at rates 3, 5, 7, 32 filters each, concatenated to 128 + BN/ReLU; conv4/conv5
  upsampled to conv3's size and concatenated (384 channels).
- Channel-wise attention on the high-level features: GAP -> FC C/4 -> ReLU -> FC C -> sigmoid;
  then a 1x1 conv to 64 + BN, upsampled to the low-level size.
- Spatial attention computed from the high-level features gates the low-level ones: two branches
  (1xk then kx1, and kx1 then 1xk, k = 9), summed, sigmoid.
- Fusion: concatenation -> 3x3 conv -> one saliency logit at the input resolution.

`width` multiplies every channel count (backbone included), so the embedded default can train
a narrow PFAN from scratch on 64 px images in about two minutes on one CPU core. With width 1 and
`batch_norm=False` the backbone is exactly torchvision's `vgg16().features` and ImageNet weights
can be loaded from a file (no download ever happens here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wsss.core.io import BadInputError
from wsss.core.schema import schema_defaults

# Index (1-based) of the conv layers whose ReLU outputs are tapped: conv1_2, conv2_2, conv3_3,
# conv4_3, conv5_3 in VGG-16 (configuration "D").
_TAP_CONVS = (2, 4, 7, 10, 13)
# VGG-16 (Simonyan & Zisserman, configuration "D"): conv output channels, "M" = 2x2 max-pool.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_features(channels: list, batch_norm: bool) -> nn.Sequential:
    """VGG-16's `features` stack in torchvision's module order (conv[, BN], ReLU ...; pools), so
    a torchvision `vgg16` state dict loads by index. Built here: importing torchvision costs every
    saliency job ~3 s."""
    layers, cin = [], 3
    for v in channels:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(cin, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        cin = v
    return nn.Sequential(*layers)


@dataclass
@schema_defaults("saliency.model")
class PFANConfig:
    width: float  # channel multiplier for every layer (1.0 = the published model)
    batch_norm: bool  # VGG-16-BN backbone: needed to train from scratch, off for ImageNet VGG
    kernel: int  # spatial-attention kernel length k (paper: 9)
    backbone_weights: str | None  # torchvision VGG-16 state-dict file; None = random init


def _ch(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def _conv_bn_relu(cin: int, cout: int, k: int = 3, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CPFE(nn.Module):
    """1x1 conv + three dilated 3x3 convs (rates 3, 5, 7), concatenated, BN + ReLU."""

    def __init__(self, cin: int, branch: int, rates: tuple[int, ...] = (3, 5, 7)):
        super().__init__()
        self.branches = nn.ModuleList([nn.Conv2d(cin, branch, 1, bias=False)] + [
            nn.Conv2d(cin, branch, 3, padding=r, dilation=r, bias=False) for r in rates])
        self.bn = nn.BatchNorm2d(branch * (len(rates) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([b(x) for b in self.branches], dim=1)))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation style gate: GAP -> FC C/4 -> ReLU -> FC C -> sigmoid."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, max(1, channels // 4))
        self.fc2 = nn.Linear(max(1, channels // 4), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * w[:, :, None, None]


class SpatialAttention(nn.Module):
    """Two separable branches (1xk -> kx1 and kx1 -> 1xk), summed, sigmoid: one map per pixel."""

    def __init__(self, cin: int, mid: int, k: int):
        super().__init__()
        p = k // 2
        self.a = nn.Sequential(nn.Conv2d(cin, mid, (1, k), padding=(0, p), bias=False), nn.BatchNorm2d(mid),
                               nn.ReLU(inplace=True), nn.Conv2d(mid, 1, (k, 1), padding=(p, 0)))
        self.b = nn.Sequential(nn.Conv2d(cin, mid, (k, 1), padding=(p, 0), bias=False), nn.BatchNorm2d(mid),
                               nn.ReLU(inplace=True), nn.Conv2d(mid, 1, (1, k), padding=(0, p)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.a(x) + self.b(x))


class PFAN(nn.Module):
    def __init__(self, cfg: PFANConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PFANConfig()
        w = cfg.width
        layer_cfg = [v if v == "M" else _ch(v, w) for v in VGG16_LAYOUT]
        self.features = vgg16_features(layer_cfg, batch_norm=cfg.batch_norm)
        self._taps = self._tap_indices()
        c12, c22, c33, c43, c53 = (_ch(c, w) for c in (64, 128, 256, 512, 512))
        low, branch = _ch(64, w), _ch(32, w)

        self.low1 = nn.Sequential(nn.Conv2d(c12, low, 3, padding=1, bias=False), nn.BatchNorm2d(low))
        self.low2 = nn.Sequential(nn.Conv2d(c22, low, 3, padding=1, bias=False), nn.BatchNorm2d(low))
        self.low_fuse = _conv_bn_relu(2 * low, low)
        self.cpfe = nn.ModuleList([CPFE(c, branch) for c in (c33, c43, c53)])
        high_in = 3 * 4 * branch
        self.channel_att = ChannelAttention(high_in)
        self.high_proj = nn.Sequential(nn.Conv2d(high_in, low, 1, bias=False), nn.BatchNorm2d(low),
                                       nn.ReLU(inplace=True))
        self.spatial_att = SpatialAttention(low, max(4, low // 2), cfg.kernel)
        self.head = nn.Conv2d(2 * low, 1, 3, padding=1)
        self._init_weights()
        if cfg.backbone_weights:
            self.load_backbone(cfg.backbone_weights)

    def _tap_indices(self) -> list[int]:
        """Indices in `features` of the ReLU after each tapped conv (robust to BN on/off)."""
        taps, convs = [], 0
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.Conv2d):
                convs += 1
            elif isinstance(layer, nn.ReLU) and convs in _TAP_CONVS and (not taps or taps[-1][1] != convs):
                taps.append((i, convs))
        return [i for i, _ in taps]

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def load_backbone(self, path: str | Path) -> None:
        """Load torchvision VGG-16 weights (`features.*` keys, or a bare features state dict)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise BadInputError(f"{path}: VGG-16 weights file is missing; fix saliency.model.backbone_weights "
                                "or set it to null to train from scratch") from None
        except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
            raise BadInputError(f"{path}: cannot read VGG-16 weights ({err}); save a torchvision "
                                "vgg16().state_dict() with torch.save") from err
        if any(k.startswith("features.") for k in state):
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        try:
            self.features.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise BadInputError(f"{path}: weights do not fit this backbone (width {self.cfg.width}, batch_norm "
                                f"{self.cfg.batch_norm}); use width 1.0 and the matching vgg16/vgg16_bn "
                                f"weights ({str(err).splitlines()[0]})") from err

    def backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, want = [], set(self._taps)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in want:
                feats.append(x)
                if len(feats) == len(self._taps):
                    break
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 1, H, W) saliency logits."""
        size = x.shape[-2:]
        c12, c22, c33, c43, c53 = self.backbone(x)
        # Low-level path at conv1_2's resolution (the input size).
        l2 = F.interpolate(self.low2(c22), size=c12.shape[-2:], mode="bilinear", align_corners=False)
        low = self.low_fuse(torch.cat([self.low1(c12), l2], dim=1))
        # High-level path: CPFE at conv3_3's resolution, channel attention, projection.
        s3 = c33.shape[-2:]
        levels = [f(c) for f, c in zip(self.cpfe, (c33, c43, c53))]
        levels = [levels[0]] + [F.interpolate(t, size=s3, mode="bilinear", align_corners=False)
                                for t in levels[1:]]
        high = self.high_proj(self.channel_att(torch.cat(levels, dim=1)))
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        # Spatial attention from context gates the low-level detail.
        low = low * self.spatial_att(high)
        logit = self.head(torch.cat([low, high], dim=1))
        if logit.shape[-2:] != size:
            logit = F.interpolate(logit, size=size, mode="bilinear", align_corners=False)
        return logit


# Laplacian kernel (8-neighbour) for the edge-preservation loss.
_LAPLACE = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])


@dataclass
@schema_defaults("saliency.train", alpha="edge_alpha")
class PFANLossConfig:
    pos_weight: float  # weight of the positive term of the saliency BCE (PFAN paper)
    alpha: float  # L = alpha * weighted BCE + (1 - alpha) * edge BCE (PFAN paper)


def laplacian_edges(prob: torch.Tensor) -> torch.Tensor:
    """Edge map in [0, 1): tanh(|Laplacian(prob)|) of an (N, 1, H, W) map, replicate-padded."""
    k = _LAPLACE.to(prob.device, prob.dtype)[None, None]
    return torch.tanh(F.conv2d(F.pad(prob, (1, 1, 1, 1), mode="replicate"), k).abs())


def pfan_loss(logits: torch.Tensor, mask: torch.Tensor, cfg: PFANLossConfig | None = None
              ) -> dict[str, torch.Tensor]:
    """PFAN's edge-preservation loss. logits, mask: (N, 1, H, W); mask in [0, 1].

    Returns {'loss', 'bce', 'edge'}. Computed in float32 so it is safe under autocast.
    """
    cfg = cfg or PFANLossConfig()
    logits, mask = logits.float(), mask.float()
    pw = torch.tensor(cfg.pos_weight, device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, mask, pos_weight=pw)
    eps = 1e-6
    pred_edge = laplacian_edges(torch.sigmoid(logits)).clamp(eps, 1 - eps)
    true_edge = laplacian_edges(mask)
    edge = -(true_edge * pred_edge.log() + (1 - true_edge) * (1 - pred_edge).log()).mean()
    loss = cfg.alpha * bce + (1 - cfg.alpha) * edge
    return {"loss": loss, "bce": bce.detach(), "edge": edge.detach()}


def build_pfan(model_cfg: dict | PFANConfig) -> PFAN:
    cfg = model_cfg if isinstance(model_cfg, PFANConfig) else PFANConfig(**model_cfg)
    return PFAN(cfg)
