"""River objects as plain JSON data for checkpoints: no pickle, so loading runs no code.

A checkpoint travels through a Kafka changelog, which anyone with write access to the topic
can fill. Unpickling such a record would run whatever it names; decoding this format only
rebuilds instances of the few river classes listed in `ALLOWED`, sets their attributes to
numbers, strings, lists, dicts and numpy arrays (raw bytes, zlib-compressed), and restores
ADWIN's native window from the bytes its own `__getstate__` produced (parsed by river's
Rust code, not executed). Anything else is refused with `CheckpointError`.

>>> from river import drift
>>> detector = drift.PageHinkley(mode="down", threshold=5.0)
>>> for x in [1.0] * 40 + [0.0] * 5:
...     _ = detector.update(x)
>>> data = dump(detector)
>>> import json; restored = load(json.loads(json.dumps(data)))
>>> restored._sum_decrease == detector._sum_decrease, restored.mode, restored._test_drift.__name__
(True, 'down', '_test_decrease')
>>> load({"$object": "os.system", "attrs": {}})
Traceback (most recent call last):
...
core.river_codec.CheckpointError: checkpoint names a class that is not allowed: 'os.system'
"""

from __future__ import annotations

import base64
import math
import zlib
from typing import Any

import numpy as np
from river import drift, linear_model, metrics, stats


class CheckpointError(ValueError):
    """A checkpoint that this service did not write, or that is damaged."""


ALLOWED: dict[str, type[object]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (
        linear_model.BayesianLinearRegression,
        stats.Mean,
        stats.Var,
        metrics.MAE,
        drift.PageHinkley,
        drift.ADWIN,
    )
}
_NATIVE_WINDOW = type(drift.ADWIN()._helper)  # river's Rust AdaptiveWindowing inside ADWIN
_DTYPES = {"<f8", "<i8", "|b1"}
#: Largest array a checkpoint may hold once decompressed (a guard against zlib bombs).
MAX_ARRAY_BYTES = 64 * 1024 * 1024


def dump(value: Any) -> Any:
    """`value` as JSON-ready data; raises TypeError for what it cannot represent."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, np.generic):
        return dump(value.item())
    if isinstance(value, list):
        return [dump(item) for item in value]
    if isinstance(value, tuple):
        return {"$tuple": [dump(item) for item in value]}
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: dump(item) for key, item in value.items()}
        return {"$dict": [[dump(key), dump(item)] for key, item in value.items()]}
    if isinstance(value, np.ndarray):
        return dump_array(value)
    if isinstance(value, _NATIVE_WINDOW):
        return {
            "$adwin_window": {
                "args": list(value.__getnewargs__()),
                "state": base64.b64encode(value.__getstate__()).decode("ascii"),
            }
        }
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if ALLOWED.get(name) is type(value):
        attrs = {}
        for key, item in vars(value).items():
            if callable(item) and getattr(item, "__self__", None) is value:
                attrs[key] = {"$method": item.__name__}  # e.g. PageHinkley's test for its mode
            else:
                attrs[key] = dump(item)
        return {"$object": name, "attrs": attrs}
    raise TypeError(f"cannot checkpoint a {name}")


def dump_array(value: np.ndarray, level: int = 6) -> dict[str, Any]:
    """A numpy array of floats, integers or booleans as its exact bytes, zlib-compressed at
    `level` (1 is fastest: for state written every judgement), for `load`."""
    array = np.ascontiguousarray(value)
    if array.dtype.str not in _DTYPES:
        raise TypeError(f"cannot checkpoint an array of {array.dtype}")
    return {
        "$ndarray": {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "zlib": base64.b64encode(zlib.compress(array.tobytes(), level)).decode("ascii"),
        }
    }


def load(data: Any) -> Any:
    """The inverse of `dump`; refuses anything `dump` would not have written."""
    try:
        return _load(data)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, zlib.error, OverflowError) as error:
        raise CheckpointError(f"damaged checkpoint: {type(error).__name__}: {error}") from None


def _load(data: Any) -> Any:
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [_load(item) for item in data]
    if not isinstance(data, dict):
        raise CheckpointError(f"unexpected {type(data).__name__} in a checkpoint")
    if "$float" in data:
        return float(data["$float"])
    if "$tuple" in data:
        return tuple(_load(item) for item in data["$tuple"])
    if "$dict" in data:
        return {_load(key): _load(item) for key, item in data["$dict"]}
    if "$ndarray" in data:
        return _load_array(data["$ndarray"])
    if "$adwin_window" in data:
        spec = data["$adwin_window"]
        delta, clock, max_buckets, min_window, grace = spec["args"]
        window = _NATIVE_WINDOW(float(delta), int(clock), int(max_buckets), int(min_window), int(grace))
        window.__setstate__(base64.b64decode(spec["state"], validate=True))
        return window
    if "$object" in data:
        cls = ALLOWED.get(data["$object"])
        if cls is None:
            raise CheckpointError(f"checkpoint names a class that is not allowed: {data['$object']!r}")
        instance = cls.__new__(cls)
        methods = {}
        for key, item in data["attrs"].items():
            if isinstance(item, dict) and "$method" in item:
                methods[key] = item["$method"]
            else:
                setattr(instance, key, _load(item))
        for key, method in methods.items():
            if not callable(getattr(cls, method, None)):
                raise CheckpointError(f"{data['$object']} has no method {method!r}")
            setattr(instance, key, getattr(instance, method))
        return instance
    return {key: _load(item) for key, item in data.items()}


def load_array(data: Any) -> np.ndarray:
    """The array `dump_array` saved; CheckpointError for anything else."""
    array = load(data)
    if not isinstance(array, np.ndarray):
        raise CheckpointError(f"expected an array, got {type(array).__name__}")
    return array


def _load_array(spec: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.str not in _DTYPES:
        raise CheckpointError(f"array of {spec['dtype']!r} is not allowed in a checkpoint")
    shape = tuple(int(n) for n in spec["shape"])
    size = dtype.itemsize * math.prod(shape)
    if any(n < 0 for n in shape) or size > MAX_ARRAY_BYTES:
        raise CheckpointError(f"array of shape {shape} is not allowed in a checkpoint")
    inflate = zlib.decompressobj()
    raw = inflate.decompress(base64.b64decode(spec["zlib"], validate=True), size + 1)
    if len(raw) != size:
        raise CheckpointError(f"array of shape {shape} holds {len(raw)} bytes, expected {size}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
