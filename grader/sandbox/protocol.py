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
MAX_DISCONNECTED = 100  # layer names listed per returned model
# A returned model's layer locations ([name, cell label, line, source]): how many, how long.
MAX_LOCATIONS = 5000
MAX_LOCATION_NAME = 200
MAX_LOCATION_LABEL = 200
MAX_LOCATION_SOURCE = 120
MAX_LOCATION_LINE = 10_000_000
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
class ModelPayload:
    """A Keras model as pure data: its JSON config and its weights, in `get_weights()` order.

    The grading process turns this back into a model only through `grader.frameworks.keras.rebuild`, which
    refuses anything outside an allow-list of built-in layers. Part of the wire's vocabulary,
    as arrays are: the child's framework package writes it (`hooks.encode`).
    """

    config: str
    weights: tuple[np.ndarray, ...]
    keras: str  # "3" or "2" (tf_keras)
    class_name: str
    # Layers the student's code created and called on the model's tensors but whose
    # results never reach its outputs, as (name, class name). Keras leaves them out of
    # `model.layers` and `to_json()`, so without this list they would vanish here and the
    # checks could only call them "missing".
    disconnected: tuple[tuple[str, str], ...] = ()
    # Sent without its weights (asked for with `weights=False`): a check that transplants the
    # reference's weights anyway need not ship millions of numbers out of the sandbox.
    weightless: bool = False
    # Where the student's code created each layer, as (layer name, cell label, line, source
    # line), recorded in the child (grader/frameworks/keras/child/provenance.py); feedback
    # points at the student's code.
    locations: tuple[tuple[str, str, int, str], ...] = ()


@dataclass(frozen=True)
class TorchModulePayload:
    """A PyTorch module as pure data (see `grader.frameworks.torch.child.describe`): its module
    tree and `torch.fx` graph as JSON, its state dict as (key, array) pairs. Rebuilt in the
    grading process only by `grader.frameworks.torch.rebuild`, from an allow-list."""

    description: dict
    state: tuple[tuple[str, np.ndarray], ...]
    class_name: str
    weightless: bool = False


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


def decode_value(tree: Any, blob: bytes) -> Any:
    """Turn (JSON tree, blob) back into data. Runs on the trusted side: never unpickles,
    and allocates no array before its size has been checked against the bytes received."""
    arrays: list[np.ndarray] = []
    if isinstance(tree, dict) and set(tree) == {"$arrays", "$value"}:
        arrays = _read_arrays(tree["$arrays"], blob)
        tree = tree["$value"]
    elif blob:
        raise ProtocolError("reply carries data it does not describe")
    return _decode(tree, arrays, depth=0)


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


def _decode(tree: Any, arrays: list[np.ndarray], depth: int) -> Any:
    if depth > 40:
        raise ProtocolError("returned value is nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [_decode(v, arrays, depth + 1) for v in tree]
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
        return tuple(_decode(v, arrays, depth + 1) for v in body)
    if tag == "$dict" and isinstance(body, dict):
        return {str(k): _decode(v, arrays, depth + 1) for k, v in body.items()}
    if tag == "$unsupported":
        return Unsupported(str(body))
    if tag == "$tensor":
        array = _array(arrays, body)
        return hooks.call("tensor_from_array", array, default=array)  # a torch tensor in a torch child
    if tag == "$torch" and isinstance(body, dict):
        return _torch_payload(body, arrays)
    if tag == "$model" and isinstance(body, dict):
        weights = body.get("weights")
        if not isinstance(body.get("config"), str) or not isinstance(weights, list):
            raise ProtocolError("malformed model in reply")
        unreached = body.get("disconnected") or []
        if not (isinstance(unreached, list) and len(unreached) <= MAX_DISCONNECTED
                and all(isinstance(d, list) and len(d) == 2 and all(isinstance(s, str) for s in d)
                        for d in unreached)):
            raise ProtocolError("malformed model in reply")
        return ModelPayload(config=body["config"], weights=tuple(_array(arrays, w) for w in weights),
                            keras=str(body.get("keras", "3")), class_name=str(body.get("class_name", "")),
                            disconnected=tuple((d[0][:100], d[1][:100]) for d in unreached),
                            weightless=body.get("weightless") is True and not weights,
                            locations=_locations(body.get("locations")))
    raise ProtocolError(f"unknown value tag {tag!r} in reply")


def _torch_payload(body: dict, arrays: list[np.ndarray]) -> TorchModulePayload:
    """Only the shape of the message is checked here; what it describes is vetted by
    `grader.frameworks.torch.rebuild` before anything is built from it."""
    state = body.get("state")
    if not (isinstance(state, list) and len(state) <= MAX_ARRAYS
            and all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in state)):
        raise ProtocolError("malformed torch module in reply")
    return TorchModulePayload(description=body, state=tuple((e[0], _array(arrays, e[1])) for e in state),
                              class_name=str(body.get("class_name", ""))[:300],
                              weightless=body.get("weightless") is True and not state)


def _locations(value: Any) -> tuple[tuple[str, str, int, str], ...]:
    """Layer locations are bounded data: a list that is not one, or too long, is refused;
    a malformed entry is dropped (a location only improves the feedback)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LOCATIONS:
        raise ProtocolError("malformed model in reply")
    return tuple((e[0], e[1], e[2], e[3]) for e in value if _valid_location(e))


def _valid_location(entry: Any) -> bool:
    """One received [layer name, cell label, line, source], within the child's own bounds."""
    return (isinstance(entry, list) and len(entry) == 4
            and isinstance(entry[0], str) and 0 < len(entry[0]) <= MAX_LOCATION_NAME
            and isinstance(entry[1], str) and 0 < len(entry[1]) <= MAX_LOCATION_LABEL
            and type(entry[2]) is int and 0 < entry[2] <= MAX_LOCATION_LINE
            and isinstance(entry[3], str) and len(entry[3]) <= MAX_LOCATION_SOURCE
            and not any(ord(c) < 32 for c in entry[1] + entry[3]))


def _array(arrays: list[np.ndarray], key: Any) -> np.ndarray:
    if type(key) is not int or not 0 <= key < len(arrays):
        raise ProtocolError("reply refers to an array it did not send")
    return arrays[key]
