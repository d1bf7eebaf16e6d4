"""The wire format between the grading process and the sandbox: data only, never code.

A message is a JSON header plus an optional binary blob holding arrays in `.npz` form.
Both sides speak it, so this module must import nothing from the rest of `grader`: the
sandbox sees only its own package (under bubblewrap it is mounted on its own).

Why not pickle: unpickling runs code chosen by whoever wrote the bytes. The grading
process reads JSON with `json.loads` and arrays with `np.load(allow_pickle=False)`, so
the worst a hostile child can send is wrong data, which the checks then grade as wrong.

Why not `.npz` either: a zip member may be compressed (64 MiB on the wire can inflate to
gigabytes in the grading process) and an `.npy` header declares a shape that numpy
allocates before it has read a byte. So arrays travel as raw bytes laid end to end in the
blob, described by a small table inside the JSON (dtype, shape, offset); the receiver
checks every entry against the blob it actually holds before it touches memory.
"""
from __future__ import annotations

import json
import math
import re
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import hooks

# Caps on what one message may carry. The header holds JSON (configs, captured output,
# tracebacks); the blob holds arrays and model weights. A happyModel's weights are
# about 40 KB; 64 MiB leaves room for honest work and refuses memory bombs.
MAX_HEADER = 8 * 1024 * 1024
MAX_BLOB = 256 * 1024 * 1024  # a ResNet50 (23.6 M float32 weights) is 90 MiB; rebuild.MAX_PARAMS is 200 MB
MAX_ARRAYS = 100_000
MAX_NDIM = 32
_PREFIX = struct.Struct("!II")
# Plain numeric, boolean and text dtypes only: no objects, no structured records.
_DTYPE = re.compile(r"[<>|=]?[biufcSU][0-9]{1,3}")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class MessageTooLarge(ProtocolError):
    pass


@dataclass(frozen=True)
class Unsupported:
    """A returned value the wire cannot carry (a function, a generator, an open file...)."""

    type_name: str


# ---------------------------------------------------------------- framing

def send_message(sock, header: dict[str, Any], blob: bytes = b"", *, max_header: int | None = None) -> None:
    """Send one message; with `max_header`, refuse (before sending anything) a header the
    receiver would refuse, so the sender can say why instead of being cut off."""
    data = json.dumps(header, allow_nan=True).encode("utf-8")
    if max_header is not None and len(data) > max_header:
        raise MessageTooLarge(f"message header of {len(data):,} bytes is over the limit ({max_header:,})")
    sock.sendall(_PREFIX.pack(len(data), len(blob)) + data + blob)


def _recv_exact(sock, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_into(sock, n: int) -> bytearray:
    """Read `n` bytes into one buffer allocated once: the arrays decoded from it are views
    of it, so a reply costs its own size in memory, not two or three times that."""
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, 1 << 20))
        if not k:
            raise EOFError("the other side closed the connection")
        got += k
    return buffer


def recv_message(sock, *, max_header: int = MAX_HEADER, max_blob: int = MAX_BLOB) -> tuple[dict, bytes]:
    header_len, blob_len = _PREFIX.unpack(_recv_exact(sock, _PREFIX.size))
    if header_len > max_header or blob_len > max_blob:
        raise MessageTooLarge(
            f"message of {header_len + blob_len:,} bytes is over the limit "
            f"({max_header:,} header / {max_blob:,} data)")
    try:
        header = json.loads(_recv_exact(sock, header_len).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd integers, deep nesting
        raise ProtocolError(f"malformed message header: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise ProtocolError("message header is not a JSON object")
    return header, _recv_into(sock, blob_len) if blob_len else b""


# ---------------------------------------------------------------- values

def encode_value(value: Any, *, limit: int | None = None, weights: bool = True,
                 side: Any = None) -> tuple[Any, bytes]:
    """Turn a Python value into (JSON tree, blob of raw array bytes).

    `limit` refuses values whose arrays add up to more bytes, before any copy is made: a
    child asked to send back 10 GB should say so, not die of its own memory limit.
    `side` is the framework package that encodes its own values (models, tensors; see
    `hooks`): by default the one this process loaded, if any.
    """
    arrays: list[np.ndarray] = []
    side = side if side is not None else hooks.ACTIVE
    encode = getattr(side, "encode", None)
    add = lambda array: _add_array(np.asarray(array), arrays)["$array"]  # noqa: E731
    tree = _encode(value, arrays, depth=0, weights=weights,
                   framework=(lambda v: encode(v, add, weights)) if encode is not None else None)
    if not arrays:
        return tree, b""
    total = sum(a.nbytes for a in arrays)
    if limit is not None and total > limit:
        raise ValueError(f"it is too large: its arrays hold {total:,} bytes, more than the {limit:,} "
                         f"the grader accepts back")
    table, parts, offset = [], [], 0
    for arr in arrays:
        data = arr.tobytes(order="C")
        table.append([arr.dtype.str, list(arr.shape), offset, len(data)])
        parts.append(data)
        offset += len(data)
    return {"$arrays": table, "$value": tree}, b"".join(parts)


def _add_array(arr: np.ndarray, arrays: list[np.ndarray]) -> dict[str, int]:
    if arr.dtype.hasobject or not _DTYPE.fullmatch(arr.dtype.str):
        raise TypeError(f"an array of dtype {arr.dtype} cannot be sent back (only numbers, booleans and text)")
    arrays.append(arr)
    return {"$array": len(arrays) - 1}


def _encode(value: Any, arrays: list[np.ndarray], depth: int, weights: bool = True, framework: Any = None) -> Any:
    if depth > 20:
        return {"$unsupported": "nested too deeply"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}
        return value
    if isinstance(value, np.ndarray):
        return _add_array(value, arrays)
    if isinstance(value, np.generic):
        return {"$scalar": _add_array(np.asarray(value), arrays)["$array"]}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, arrays, depth + 1, weights, framework) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays, depth + 1, weights, framework) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode(v, arrays, depth + 1, weights, framework) for k, v in value.items()}}
    own = framework(value) if framework is not None else None
    if own is not None:  # a model or tensor of the framework (hooks)
        return own
    if hasattr(value, "numpy") and callable(value.numpy):  # an eager tensor of any kind
        try:
            return _add_array(np.asarray(value.numpy()), arrays)
        except Exception:  # noqa: BLE001 - anything odd is simply unsupported
            pass
    return {"$unsupported": type(value).__name__}


def decode_value(tree: Any, blob: bytes, *, side: Any = None) -> Any:
    """Turn (JSON tree, blob) back into data. Runs on the trusted side: never unpickles,
    and allocates no array before its size has been checked against the bytes received.
    `side` is the framework package that reads its own values (a returned model: `hooks`
    `decode`), by default the one this process loaded, if any; without one, a reply that
    holds a model is malformed."""
    arrays: list[np.ndarray] = []
    if isinstance(tree, dict) and set(tree) == {"$arrays", "$value"}:
        arrays = _read_arrays(tree["$arrays"], blob)
        tree = tree["$value"]
    elif blob:
        raise ProtocolError("reply carries data it does not describe")
    return _decode(tree, arrays, depth=0, side=side if side is not None else hooks.ACTIVE)


def _read_arrays(table: Any, blob: bytes) -> list[np.ndarray]:
    if not isinstance(table, list) or len(table) > MAX_ARRAYS:
        raise ProtocolError("malformed array table in reply")
    view = memoryview(blob)
    arrays = []
    end = 0  # arrays are laid end to end: none may share bytes with another
    for entry in table:
        if not (isinstance(entry, list) and len(entry) == 4):
            raise ProtocolError("malformed array table in reply")
        dtype_str, shape, offset, nbytes = entry
        if not (isinstance(dtype_str, str) and _DTYPE.fullmatch(dtype_str)):
            raise ProtocolError(f"reply holds an array of a type that is not accepted ({str(dtype_str)[:20]!r})")
        dtype = np.dtype(dtype_str)
        if dtype.hasobject or dtype.itemsize == 0:
            raise ProtocolError("reply holds an array of a type that is not accepted")
        if not (isinstance(shape, list) and len(shape) <= MAX_NDIM
                and all(type(d) is int and d >= 0 for d in shape)):
            raise ProtocolError("malformed array shape in reply")
        if not (type(offset) is int and type(nbytes) is int and 0 <= offset and 0 <= nbytes
                and offset + nbytes <= len(blob)):
            raise ProtocolError("reply refers to data it did not send")
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes:
            raise ProtocolError("an array in the reply does not match its declared shape")
        if offset != end:
            raise ProtocolError("malformed array table in reply (arrays overlap or leave gaps)")
        end = offset + nbytes
        arr = np.frombuffer(view[offset:offset + nbytes], dtype=dtype, count=count).reshape(shape)
        # A received buffer (bytearray) is the arrays' own memory: views, no copy. Bytes are
        # read-only: copied, so every array that comes back can be written like any other.
        arrays.append(arr if arr.flags.writeable else arr.copy())
    return arrays


def _decode(tree: Any, arrays: list[np.ndarray], depth: int, side: Any = None) -> Any:
    if depth > 40:
        raise ProtocolError("returned value is nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [_decode(v, arrays, depth + 1, side) for v in tree]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise ProtocolError("malformed value in reply")
    (tag, body), = tree.items()
    if tag == "$array":
        return _array(arrays, body)
    if tag == "$scalar":
        return _array(arrays, body)[()]
    if tag == "$float":
        if body not in ("nan", "inf", "-inf"):
            raise ProtocolError("malformed float in reply")
        return float(body)
    if tag == "$tuple" and isinstance(body, list):
        return tuple(_decode(v, arrays, depth + 1, side) for v in body)
    if tag == "$dict" and isinstance(body, dict):
        return {str(k): _decode(v, arrays, depth + 1, side) for k, v in body.items()}
    if tag == "$unsupported":
        return Unsupported(str(body))
    if tag == "$tensor":
        array = _array(arrays, body)
        return hooks.call("tensor_from_array", array, default=array)  # a torch tensor in a torch child
    return _framework_value(tag, body, arrays, side)


def _framework_value(tag: str, body: Any, arrays: list[np.ndarray], side: Any) -> Any:
    """A value only the framework can read (a model): its package checks the body's form
    and fetches its arrays through here, so every array is still checked as above."""
    if side is None or not hasattr(side, "decode") or not tag.startswith("$"):
        raise ProtocolError(f"unknown value tag {str(tag)[:40]!r} in reply")
    try:
        value = side.decode(tag, body, lambda key: _array(arrays, key))
    except ProtocolError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ProtocolError(str(exc)[:200] or f"malformed {tag[1:]} in reply") from None
    if value is None:
        raise ProtocolError(f"unknown value tag {str(tag)[:40]!r} in reply")
    return value


def _array(arrays: list[np.ndarray], key: Any) -> np.ndarray:
    if type(key) is not int or not 0 <= key < len(arrays):
        raise ProtocolError("reply refers to an array it did not send")
    return arrays[key]
