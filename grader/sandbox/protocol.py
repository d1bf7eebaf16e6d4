"""The wire format between the grading process and the sandbox: data only, never code.

A message is a JSON header plus an optional binary blob holding arrays in `.npz` form.
Both sides speak it, so this module must import nothing from the rest of `grader`: the
sandbox sees only its own package (under bubblewrap it is mounted on its own).

Why not pickle: unpickling runs code chosen by whoever wrote the bytes. The grading
process reads JSON with `json.loads` and arrays with `np.load(allow_pickle=False)`, so
the worst a hostile child can send is wrong data, which the checks then grade as wrong.
"""
from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

# Caps on what one message may carry. The header holds JSON (configs, captured output,
# tracebacks); the blob holds arrays and model weights. A happyModel's weights are
# about 40 KB; 64 MiB leaves room for honest work and refuses memory bombs.
MAX_HEADER = 8 * 1024 * 1024
MAX_BLOB = 64 * 1024 * 1024
_PREFIX = struct.Struct("!II")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class MessageTooLarge(ProtocolError):
    pass


@dataclass(frozen=True)
class ModelPayload:
    """A Keras model as pure data: its JSON config and its weights, in `get_weights()` order.

    The grading process turns this back into a model only through `grader.rebuild`, which
    refuses anything outside an allow-list of built-in layers.
    """

    config: str
    weights: tuple[np.ndarray, ...]
    keras: str  # "3" or "2" (tf_keras)
    class_name: str


@dataclass(frozen=True)
class Unsupported:
    """A returned value the wire cannot carry (a function, a generator, an open file...)."""

    type_name: str


# ---------------------------------------------------------------- framing

def send_message(sock, header: dict[str, Any], blob: bytes = b"") -> None:
    data = json.dumps(header, allow_nan=True).encode("utf-8")
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


def recv_message(sock, *, max_header: int = MAX_HEADER, max_blob: int = MAX_BLOB) -> tuple[dict, bytes]:
    header_len, blob_len = _PREFIX.unpack(_recv_exact(sock, _PREFIX.size))
    if header_len > max_header or blob_len > max_blob:
        raise MessageTooLarge(
            f"message of {header_len + blob_len:,} bytes is over the limit "
            f"({max_header:,} header / {max_blob:,} data)")
    try:
        header = json.loads(_recv_exact(sock, header_len).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed message header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("message header is not a JSON object")
    return header, _recv_exact(sock, blob_len) if blob_len else b""


# ---------------------------------------------------------------- values

def encode_value(value: Any) -> tuple[Any, bytes]:
    """Turn a Python value into (JSON tree, npz blob). Runs on the untrusted side."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(value, arrays, depth=0)
    if not arrays:
        return tree, b""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return tree, buf.getvalue()


def _add_array(arr: np.ndarray, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    if arr.dtype.hasobject:
        raise TypeError("an array of Python objects cannot be sent back")
    key = f"a{len(arrays)}"
    arrays[key] = arr
    return {"$array": key}


def _encode(value: Any, arrays: dict[str, np.ndarray], depth: int) -> Any:
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
        return {"$tuple": [_encode(v, arrays, depth + 1) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode(v, arrays, depth + 1) for k, v in value.items()}}
    model = _encode_model(value, arrays)
    if model is not None:
        return model
    if hasattr(value, "numpy") and callable(value.numpy):  # a TensorFlow eager tensor
        try:
            return _add_array(np.asarray(value.numpy()), arrays)
        except Exception:  # noqa: BLE001 - anything odd is simply unsupported
            pass
    return {"$unsupported": type(value).__name__}


def _encode_model(value: Any, arrays: dict[str, np.ndarray]) -> dict | None:
    if not (hasattr(value, "to_json") and hasattr(value, "get_weights") and hasattr(value, "layers")):
        return None
    module = type(value).__module__ or ""
    keras = "2" if module.startswith("tf_keras") else "3"
    weights = [_add_array(np.asarray(w), arrays)["$array"] for w in value.get_weights()]
    return {"$model": {"config": value.to_json(), "weights": weights, "keras": keras,
                       "class_name": type(value).__name__}}


def decode_value(tree: Any, blob: bytes) -> Any:
    """Turn (JSON tree, npz blob) back into data. Runs on the trusted side: never unpickles."""
    arrays: dict[str, np.ndarray] = {}
    if blob:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:  # noqa: BLE001 - any malformed blob is the sender's fault
            raise ProtocolError(f"returned arrays could not be read: {exc}") from None
    return _decode(tree, arrays, depth=0)


def _decode(tree: Any, arrays: dict[str, np.ndarray], depth: int) -> Any:
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
    if tag == "$model" and isinstance(body, dict):
        weights = body.get("weights")
        if not isinstance(body.get("config"), str) or not isinstance(weights, list):
            raise ProtocolError("malformed model in reply")
        return ModelPayload(config=body["config"], weights=tuple(_array(arrays, w) for w in weights),
                            keras=str(body.get("keras", "3")), class_name=str(body.get("class_name", "")))
    raise ProtocolError(f"unknown value tag {tag!r} in reply")


def _array(arrays: dict[str, np.ndarray], key: Any) -> np.ndarray:
    if not isinstance(key, str) or key not in arrays:
        raise ProtocolError("reply refers to an array it did not send")
    return arrays[key]
