"""Losses of the classifier stage: the EPS saliency loss (Lee et al., CVPR 2021, §3.2, Eq. 1–4).

P = softmax over the C+1 localization maps. A present class i belongs to the foreground when
its (rounded) map overlaps the (rounded) saliency map by more than τ:
    O_i = |round(P_i) ∧ round(S)| / (|round(P_i)| + 1e-4)
otherwise it joins the background channel (this is how EPS handles objects a saliency model
misses and context a saliency model marks).

`skip_unclaimed` (not in the paper): a present class whose rounded map is empty (it wins no
pixel, so O_i is 0/1e-4) joins neither group. The paper trains from ImageNet weights, where class
maps are peaked from the start; from scratch every map starts near 1/(C+1), and a class sent to
the background group for that reason gets its map pushed down on its own salient object and
never recovers (seen on the embedded benchmark: kite and star collapsed, selection rate 0).
Left out of both groups, its probability counts nowhere, so raising it lowers M_bg and L_sal
helps it win its object until O_i is defined. Then
    M_fg = Σ_{i present, O_i > τ} P_i,   M_bg = Σ_{i present, O_i ≤ τ} P_i + P_{C+1},
    Ŝ = λ·M_fg + (1−λ)·(1 − M_bg),       L_sal = mean (Ŝ − S)².
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from wsss.methods.cam_loss import classification_loss, image_logits
from wsss.methods.eps import EpsSettings


def resize_saliency(saliency: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """(N, 1, H, W) → (N, 1, h, w): bilinear, or nearest (the official EPS code's F.interpolate default)."""
    if tuple(saliency.shape[-2:]) == tuple(size):
        return saliency
    if mode == "nearest":
        return F.interpolate(saliency, size=size, mode="nearest")
    return F.interpolate(saliency, size=size, mode="bilinear", align_corners=False)


def overlap_ratios(probs: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
    """O_i for the C class channels: (N, C+1, h, w) probs, (N, 1, h, w) saliency → (N, C).

    The rounded P is detached: the selection is a discrete choice, not a differentiable path.
    """
    p = probs[:, :-1].detach().round()
    s = saliency.detach().round()
    return (p * s).sum(dim=(2, 3)) / (p.sum(dim=(2, 3)) + 1e-4)


def select_maps(probs: torch.Tensor, saliency: torch.Tensor, labels: torch.Tensor,
                tau: float, skip_unclaimed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (N, C) foreground / background-group selections of the present classes."""
    present = labels > 0.5
    if skip_unclaimed:
        present = present & (probs[:, :-1].detach().round().sum(dim=(2, 3)) > 0)
    overlap = overlap_ratios(probs, saliency)
    return present & (overlap > tau), present & (overlap <= tau)


def eps_loss(maps: torch.Tensor, saliency: torch.Tensor, labels: torch.Tensor, tau: float, lam: float,
             skip_unclaimed: bool = False, saliency_resize: str = "bilinear"):
    """The EPS saliency loss.

    maps (N, C+1, h, w) raw localization maps (last = background); saliency (N, 1, H, W) in
    [0, 1]; labels (N, C) multi-hot. Returns (loss, fg_map, bg_map, estimated_saliency), the maps
    (N, 1, h, w). Device-agnostic; computed in float32 even under autocast.
    """
    if maps.dim() != 4 or labels.shape != (maps.shape[0], maps.shape[1] - 1):
        raise ValueError(f"eps_loss: maps {tuple(maps.shape)} and labels {tuple(labels.shape)} do not match "
                         "(expected maps (N, C+1, h, w) and labels (N, C))")
    probs = torch.softmax(maps.float(), dim=1)
    sal = resize_saliency(saliency.float(), tuple(maps.shape[-2:]), saliency_resize)
    fg_sel, bg_sel = select_maps(probs, sal, labels, tau, skip_unclaimed)
    cls_probs = probs[:, :-1]
    fg_map = (cls_probs * fg_sel[:, :, None, None]).sum(dim=1, keepdim=True)
    bg_map = (cls_probs * bg_sel[:, :, None, None]).sum(dim=1, keepdim=True) + probs[:, -1:]
    estimated = lam * fg_map + (1.0 - lam) * (1.0 - bg_map)
    loss = F.mse_loss(estimated, sal)
    return loss, fg_map, bg_map, estimated


def eps_step(num_classes: int, settings: EpsSettings, class_names: list[str]):
    """L_cls + L_sal, plus the per-class foreground-selection rate `fg_<class>`: the share of this
    batch's images containing the class whose map the selection put in the foreground (NaN when
    the class is absent). A class stuck at 0 has collapsed onto the background."""
    cfg = settings

    def step(model, batch):
        maps = model(batch["image"])
        labels = batch["label"]
        l_cls = classification_loss(image_logits(model, maps), labels)
        out = {"loss": l_cls, "cls": l_cls.detach()}
        l_sal, *_ = eps_loss(maps, batch["saliency"], labels, cfg.tau, cfg.lam, cfg.skip_unclaimed,
                             cfg.saliency_resize)
        if batch.get("_step", cfg.sal_warmup) >= cfg.sal_warmup:
            out["loss"] = l_cls + l_sal
        out["sal"] = l_sal.detach()
        with torch.no_grad():
            probs = torch.softmax(maps.float(), 1)
            sal = resize_saliency(batch["saliency"].float(), tuple(maps.shape[-2:]), cfg.saliency_resize)
            fg, _ = select_maps(probs, sal, labels, cfg.tau, cfg.skip_unclaimed)
            present = (labels > 0.5).sum(0)
            rate = fg.sum(0).float() / present.clamp(min=1)
            rate[present == 0] = math.nan
            for c, name in enumerate(class_names):
                out[f"fg_{name}"] = rate[c]
        return out

    return step
