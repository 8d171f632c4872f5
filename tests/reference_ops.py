"""Written-out references for the reference tests of the inference stages: numpy, float64, no torch.

Each function states the operation the workflow's code is meant to perform, so that a test compares
what a stage stored with what the protocol says, not with another call of the same code.
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def normalise(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (3, H, W) float64, ImageNet mean and std."""
    return ((image / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


def _axis(n_in: int, n_out: int):
    # Half-pixel centres (align_corners=False): output pixel i samples input (i + 0.5)·n_in/n_out − 0.5,
    # clamped at 0 on the left and at the last pixel on the right; no anti-aliasing.
    src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., h, w) → (..., H, W): bilinear interpolation with align_corners=False."""
    y0, y1, fy = _axis(a.shape[-2], size[0])
    x0, x1, fx = _axis(a.shape[-1], size[1])
    rows = a[..., y0, :] * (1 - fy)[:, None] + a[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def softmax(a: np.ndarray, axis: int = 0) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def stub_maps(mix: np.ndarray, tilt: np.ndarray, x: np.ndarray, stride: int) -> np.ndarray:
    """What tests' stub networks compute on one view (3, h, w): a per-output mix of the input channels,
    averaged over stride × stride blocks (the output stride), plus a left-to-right ramp per output (so
    that a horizontally flipped view gives another answer)."""
    y = np.einsum("kc,chw->khw", mix, x)
    k, h, w = y.shape
    y = y.reshape(k, h // stride, stride, w // stride, stride).mean(axis=(2, 4))
    return y + tilt[:, None, None] * np.linspace(0.0, 1.0, w // stride)
