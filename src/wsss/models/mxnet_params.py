"""MXNet `.params` files (NDArray lists) in pure numpy, and their ResNet-38d names in PyTorch.

The ImageNet ResNet-38 that EPS starts from (ademxapp's ilsvrc-cls_rna-a1_cls1000_ep-0001.params)
exists only as an MXNet file; reading it here spares the workflow an MXNet install.

Format (apache/mxnet src/ndarray/ndarray.cc, `NDArray::Save/Load`; little-endian throughout):
  list:    uint64 magic 0x112, uint64 reserved, uint64 n, n × NDArray, uint64 m, m × (uint64 len, bytes)
           (m is 0 for an unnamed list, else n)
  NDArray: uint32 magic, then by magic
    0xF993fac9 (V2) / 0xF993faca (V3, numpy shape semantics): int32 storage type (0 dense; sparse
             types add storage/aux shapes, not supported here), shape
    0xF993fac8 (V1): shape
    other (legacy): the magic is ndim; ndim × uint32 dims
  shape:   int32 ndim, ndim × int64 dims (V1/V2/V3). ndim 0 (V3: ndim -1 or a dim -1) is an empty
           "none" array and ends the record.
  then     int32 dev_type, int32 dev_id (the context), int32 dtype flag, the raw C-order data.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Iterable

import numpy as np

from wsss.core.io import BadInputError

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
FORMATS = ("v3", "v2", "v1", "legacy")
CPU_CONTEXT = (1, 0)  # dev_type kCPU = 1, dev_id 0

# mshadow type flags (3rdparty/mshadow/mshadow/base.h); 12 (bfloat16) has no numpy type.
DTYPE_OF_FLAG = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8,
                 6: np.int64, 7: np.bool_, 8: np.int16, 9: np.uint16, 10: np.uint32, 11: np.uint64}
FLAG_OF_DTYPE = {np.dtype(t): f for f, t in DTYPE_OF_FLAG.items()}


class _Cursor:
    def __init__(self, data: bytes, source: Path):
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BadInputError(f"{self.source}: truncated MXNet .params file (needs {n} bytes at offset "
                                f"{self.pos}, has {len(self.data) - self.pos}); re-download it")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def _read_shape(cur: _Cursor) -> tuple[int, ...] | None:
    (ndim,) = cur.unpack("i")
    if ndim < 0:  # V3 "unknown shape"
        return None
    if ndim > 32:
        raise BadInputError(f"{cur.source}: NDArray with {ndim} dimensions at offset {cur.pos}; not a valid "
                            "MXNet .params file")
    return cur.unpack(f"{ndim}q")


def _read_ndarray(cur: _Cursor) -> np.ndarray | None:
    (magic,) = cur.unpack("I")
    if magic in (V2_MAGIC, V3_MAGIC):
        (stype,) = cur.unpack("i")
        if stype != 0:
            raise BadInputError(f"{cur.source}: sparse NDArray (storage type {stype}); only dense arrays are "
                                "supported; save the parameters densely")
        shape = _read_shape(cur)
        if shape is None or any(d < 0 for d in shape) or (magic == V2_MAGIC and len(shape) == 0):
            return None
    elif magic == V1_MAGIC:
        shape = _read_shape(cur)
        if not shape:
            return None
    else:  # legacy: the word read is ndim, the dims are uint32
        if magic > 32:
            raise BadInputError(f"{cur.source}: unknown NDArray magic {magic:#x} at offset {cur.pos - 4}; "
                                "not an MXNet .params file")
        shape = cur.unpack(f"{magic}I")
        if magic == 0:
            return None
    cur.unpack("ii")  # context: dev_type, dev_id (we always load to CPU)
    (flag,) = cur.unpack("i")
    if flag not in DTYPE_OF_FLAG:
        raise BadInputError(f"{cur.source}: NDArray dtype flag {flag} is not supported (0-11 are); convert "
                            "the parameters to float32 in MXNet")
    dtype = np.dtype(DTYPE_OF_FLAG[flag]).newbyteorder("<")
    count = int(np.prod(shape, dtype=np.int64))
    raw = cur.take(count * dtype.itemsize)
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_params(path: str | os.PathLike) -> dict[str, np.ndarray | None]:
    """Every array of an MXNet NDArray-list file by name (index as a string when unnamed).

    Names keep MXNet's `arg:`/`aux:` prefixes. "None" arrays (shape of 0 dims) come back as None.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{path}: MXNet .params file is missing; download "
                            "ilsvrc-cls_rna-a1_cls1000_ep-0001.params (see docs/official_eps_facts.md)") from None
    cur = _Cursor(data, path)
    header, _reserved = cur.unpack("QQ")
    if header != LIST_MAGIC:
        raise BadInputError(f"{path}: not an MXNet NDArray file (header {header:#x}, expected 0x112); "
                            "give the .params file as MXNet saved it")
    (n,) = cur.unpack("Q")
    arrays = [_read_ndarray(cur) for _ in range(n)]
    (m,) = cur.unpack("Q")
    if m not in (0, n):
        raise BadInputError(f"{path}: {n} arrays but {m} names; the file is corrupt, re-download it")
    names = []
    for _ in range(m):
        (length,) = cur.unpack("Q")
        names.append(cur.take(length).decode("utf-8"))
    if not names:
        names = [str(i) for i in range(n)]
    if len(set(names)) != len(names):
        raise BadInputError(f"{path}: duplicate array names; the file is corrupt, re-download it")
    return dict(zip(names, arrays))


def _shape_bytes(shape: tuple[int, ...], fmt: str) -> bytes:
    if fmt == "legacy":
        return struct.pack(f"<I{len(shape)}I", len(shape), *shape)
    return struct.pack(f"<i{len(shape)}q", len(shape), *shape)


def write_params(path: str | os.PathLike, arrays: dict[str, np.ndarray] | Iterable[np.ndarray],
                 fmt: str = "v2", context: tuple[int, int] = CPU_CONTEXT) -> None:
    """Write an NDArray-list file by the format above (a dict is saved with names, a list without)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown NDArray format '{fmt}'; choose one of {FORMATS}")
    names, values = (list(arrays), list(arrays.values())) if isinstance(arrays, dict) else ([], list(arrays))
    out = [struct.pack("<QQQ", LIST_MAGIC, 0, len(values))]
    for arr in values:
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in FLAG_OF_DTYPE:
            raise ValueError(f"dtype {arr.dtype} has no MXNet type flag")
        if arr.ndim == 0 and fmt != "v3":
            raise ValueError(f"format {fmt} cannot hold a 0-d array (0 dims means 'none'); use v3 or reshape")
        if fmt == "legacy":
            out.append(_shape_bytes(arr.shape, fmt))
        else:
            magic = {"v1": V1_MAGIC, "v2": V2_MAGIC, "v3": V3_MAGIC}[fmt]
            out.append(struct.pack("<I", magic) + (b"" if fmt == "v1" else struct.pack("<i", 0)))
            out.append(_shape_bytes(arr.shape, fmt))
        out.append(struct.pack("<iii", context[0], context[1], FLAG_OF_DTYPE[arr.dtype]))
        out.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    out.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        out.append(struct.pack("<Q", len(encoded)) + encoded)
    with open(path, "wb") as f:
        for chunk in out:
            f.write(chunk)


# ---- names: MXNet ResNet-38 (ademxapp) → wsss.models.resnet38d (the official PyTorch port) ----
# As PSA's `convert_mxnet_to_torch`: res<S>a / bn<S>a → block b<S>, res<S>b<I> / bn<S>b<I> → b<S>_<I>;
# res* are conv weights (conv_<branch>.weight), bn* are BN (bn_<branch>.*); conv1a and bn7 keep
# their names; linear1000 (the ImageNet classifier) is dropped.
_BN_PARAM = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_var": "running_var"}
_BLOCK_NAME = re.compile(r"^(res|bn)(\d+)(?:a|b(\d+))_(branch[0-9a-z]+)_(weight|gamma|beta|moving_mean|moving_var)$")
_BN7_NAME = re.compile(r"^bn7_(gamma|beta|moving_mean|moving_var)$")


def resnet38d_key(mxnet_name: str) -> str | None:
    """The resnet38d state-dict key of an MXNet parameter name; None for a dropped one (linear1000)."""
    name = re.sub(r"^(arg|aux):", "", mxnet_name)
    if name == "conv1a_weight":
        return "conv1a.weight"
    if name.startswith("linear1000_"):
        return None
    if m := _BN7_NAME.match(name):
        return f"bn7.{_BN_PARAM[m.group(1)]}"
    if m := _BLOCK_NAME.match(name):
        kind, stage, index, branch, param = m.groups()
        block = f"b{stage}" if index is None else f"b{stage}_{index}"
        if kind == "res" and param == "weight":
            return f"{block}.conv_{branch}.weight"
        if kind == "bn" and param != "weight":
            return f"{block}.bn_{branch}.{_BN_PARAM[param]}"
    raise ValueError(f"MXNet parameter '{mxnet_name}' is not part of ResNet-38 (model A1)")


def mxnet_to_resnet38d(arrays: dict[str, np.ndarray | None], source: str | os.PathLike = "<params>") -> dict:
    """MXNet arrays by name → a resnet38d state dict of torch tensors (floats as float32).

    BN `num_batches_tracked` buffers (not in MXNet) are added as 0 so the result loads strictly.
    """
    import torch

    state = {}
    for name, arr in arrays.items():
        try:
            key = resnet38d_key(name)
        except ValueError as err:
            raise BadInputError(f"{source}: {err}; give the ImageNet ResNet-38 file "
                                "ilsvrc-cls_rna-a1_cls1000_ep-0001.params") from None
        if key is None:
            continue
        if arr is None or key in state:
            raise BadInputError(f"{source}: parameter '{name}' is {'empty' if arr is None else 'duplicated'}; "
                                "the file is corrupt, re-download it")
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32, copy=False)
        state[key] = torch.from_numpy(np.ascontiguousarray(arr))
    for key in [k for k in state if k.endswith(".running_mean")]:
        state[key[: -len("running_mean")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state
