"""Caffe `.caffemodel` files (a serialized `NetParameter` protobuf) read in pure numpy: each layer's
name and parameter blobs, without Caffe or the protobuf package.

DeepLab's official ImageNet init of its VGG-16 (vgg16_20M.caffemodel, the DeepLab-LargeFOV
release) exists only as a Caffe file; reading it here spares the workflow a Caffe install or a
conversion step done by hand.

Protobuf wire format: each field is a varint key (field number << 3 | wire type), then a varint
(wire type 0), 8 bytes (1), a varint length and that many bytes (2: strings, messages, packed
arrays) or 4 bytes (5). Little-endian, unknown fields skipped. Messages read (caffe.proto, as
vendored by deeplab-pytorch in libs/caffe.proto):
  NetParameter      100 layer (LayerParameter), 2 layers (V1LayerParameter, the pre-2015 format)
  LayerParameter      1 name, 7 blobs
  V1LayerParameter    4 name, 6 blobs, 1 layer (V0LayerParameter: 1 name, 50 blobs)
  BlobProto           7 shape (BlobShape: 1 dim, int64, packed), else the deprecated 4-D
                      1 num, 2 channels, 3 height, 4 width; 5 data (float, packed),
                      8 double_data (double, packed)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wsss.core.io import BadInputError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
NET_LAYERS = {100: "layer", 2: "v1"}  # NetParameter field -> the kind of layer message it holds
LAYER = {"layer": (1, 7), "v1": (4, 6), "v0": (1, 50)}  # kind -> (name field, blobs field)


class _Reader:
    def __init__(self, data: memoryview, source: Path):
        self.data, self.source = data, source

    def fail(self, what: str, pos: int):
        raise BadInputError(f"{self.source}: not a valid .caffemodel ({what} at byte {pos}); re-download it")

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            if pos >= end or shift > 63:
                self.fail("truncated varint", pos)
            byte = self.data[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if byte < 0x80:
                return value, pos

    def fields(self, start: int, end: int):
        """(field number, wire type, value) of a message in data[start:end]; for wire type 2 the
        value is the (start, end) of its bytes, for 1 and 5 the raw bytes' position."""
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if wire == VARINT:
                value, pos = self.varint(pos, end)
            elif wire == LENGTH:
                length, pos = self.varint(pos, end)
                value, pos = (pos, pos + length), pos + length
            elif wire in (FIXED64, FIXED32):
                value, pos = pos, pos + (8 if wire == FIXED64 else 4)
            else:
                self.fail(f"wire type {wire} of field {number}", pos)
            if pos > end:
                self.fail(f"field {number} runs past its message", pos)
            yield number, wire, value

    def blob(self, start: int, end: int) -> np.ndarray:
        shape, legacy, chunks = None, {}, {"float": [], "double": []}
        for number, wire, value in self.fields(start, end):
            if number == 7 and wire == LENGTH:
                shape = []
                for dim_number, dim_wire, dim in self.fields(*value):
                    if dim_number != 1:
                        continue
                    if dim_wire == LENGTH:  # packed
                        pos, stop = dim
                        while pos < stop:
                            d, pos = self.varint(pos, stop)
                            shape.append(d)
                    else:
                        shape.append(dim)
            elif number in (1, 2, 3, 4) and wire == VARINT:
                legacy[number] = value
            elif number in (5, 8):
                kind, dtype, size = ("float", "<f4", 4) if number == 5 else ("double", "<f8", 8)
                if wire == LENGTH:
                    chunks[kind].append(np.frombuffer(self.data[value[0]:value[1]], dtype=dtype))
                else:  # one unpacked element
                    chunks[kind].append(np.frombuffer(self.data[value:value + size], dtype=dtype))
        values = chunks["float"] or chunks["double"]
        array = (np.concatenate(values) if values else np.zeros(0, np.float32)).astype(np.float32)
        if shape is None:
            # Caffe writes all four legacy dimensions; one left out is taken as 1, not as Caffe's 0.
            shape = [legacy.get(n, 1) for n in (1, 2, 3, 4)] if legacy else [array.size]
        if int(np.prod(shape)) != array.size:
            self.fail(f"blob of shape {tuple(shape)} holding {array.size} values", start)
        return array.reshape(shape)

    def layer(self, kind: str, start: int, end: int) -> tuple[str | None, list[np.ndarray]]:
        name_field, blobs_field = LAYER[kind]
        name, blobs = None, []
        for number, wire, value in self.fields(start, end):
            if wire != LENGTH:
                continue
            if number == name_field:
                name = bytes(self.data[value[0]:value[1]]).decode("utf-8", errors="replace")
            elif number == blobs_field:
                blobs.append(self.blob(*value))
            elif kind == "v1" and number == 1:  # a V0 layer nested in a V1 one
                inner_name, inner_blobs = self.layer("v0", *value)
                name, blobs = name or inner_name, blobs + inner_blobs
        return name, blobs


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Layer name -> its parameter blobs (float32, in Caffe's shapes), in file order; layers
    without blobs (ReLU, pooling, ...) are left out. A truncated or foreign file is a BadInputError."""
    path = Path(path)
    try:
        data = memoryview(path.read_bytes())
    except FileNotFoundError:
        raise BadInputError(f"{path}: .caffemodel file is missing; rerun the weights stage to download it") from None
    reader = _Reader(data, path)
    layers: dict[str, list[np.ndarray]] = {}
    for number, wire, value in reader.fields(0, len(data)):
        if number not in NET_LAYERS or wire != LENGTH:
            continue
        name, blobs = reader.layer(NET_LAYERS[number], *value)
        if not blobs:
            continue
        if name is None or name in layers:
            reader.fail(f"layer {'without a name' if name is None else repr(name) + ' twice'}", value[0])
        layers[name] = blobs
    if not layers:
        raise BadInputError(f"{path}: no layer with parameters found; not a .caffemodel (a prototxt or another "
                            "file?); download the weights file itself")
    return layers


def caffe_params(layers: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Layer blobs under PyTorch-style names: blob 0 -> `<layer>.weight`, blob 1 -> `<layer>.bias`,
    any further blob -> `<layer>.blob<i>` (a layer this project does not map, left for the caller to refuse)."""
    out = {}
    for name, blobs in layers.items():
        for i, blob in enumerate(blobs):
            out[f"{name}.{('weight', 'bias')[i] if i < 2 else f'blob{i}'}"] = blob
    return out
