"""Untrusted model files: mutated headers and tensors of every registered model.

Each case writes a crafted file whose integrity digest is recomputed (what an attacker does, so
the digest cannot help) and loads it. The loader must either refuse it with a clean
``ModelFileError`` or return a model that is exactly what the file says (saving it again gives
the same parameters, fitted values and tensors) and that works on data of its width. No other
exception, and the memory traced while loading stays under a small multiple of the file size.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc
import warnings
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import unsup
from tests.conftest import test_params_for, toy_data_for
from unsup.io import ModelFileError, _digest
from unsup.registry import model_specs

pytestmark = pytest.mark.usefixtures("one_thread")

SPECS = model_specs()
MEMORY_FACTOR = 8  # traced bytes while loading <= this x the file size (+ 2 MB of overhead)


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with safe_open(path, framework="numpy") as f:
        meta = json.loads(f.metadata()["json"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return meta, tensors


def _write(path: str, meta: Any, tensors: dict[str, np.ndarray]) -> None:
    meta_json = json.dumps(meta, sort_keys=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(tensors, path, metadata={"format": "unsup", "format_version": "1",
                                       "json": meta_json, "sha256": _digest(meta_json, tensors)})


def _header_mutations(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, mutated meta) pairs."""
    out = []

    def put(label: str, section: str, key: str, value: Any) -> None:
        m = json.loads(json.dumps(meta))
        if value is _DELETE:
            m[section].pop(key, None)
        else:
            m[section][key] = value
        # a huge count is valid for budgets (iterations): such a model is not run afterwards
        out.append((f"{section}.{key}={value!r}"[:80] + (" (not run)" if value == 10**9 else ""),
                    m))

    for section in ("params", "fitted"):
        for k, v in meta[section].items():
            if isinstance(v, bool):
                put("", section, k, "yes")
            elif isinstance(v, int):
                for w in (0, -1, v + 1, 10**9, 1.5, "x", None):
                    put("", section, k, w)
            elif isinstance(v, float):
                for w in (-1.0, float("nan"), "x"):
                    put("", section, k, w)
            elif isinstance(v, str):
                put("", section, k, "no-such-option")
            elif isinstance(v, list) and v and all(isinstance(x, int) for x in v):
                for w in ([10**6] * len(v), [], [0] * len(v), ["a"] * len(v), v + v[-1:]):
                    put("", section, k, w)
        for k in list(meta[section])[:3]:
            put("", section, k, _DELETE)
    put("", "params", "no_such_param", 1)
    put("", "fitted", "__class__", "x")
    put("", "fitted", "not_public", 1)
    other = [s.cls.__name__ for s in SPECS if s.cls.__name__ != meta["class"]]
    for name in other[:3]:
        m = json.loads(json.dumps(meta))
        m["class"] = name
        out.append((f"class={name}", m))
    out.append(("meta=list", [meta]))
    return out


_DELETE = object()


def _roles(tensors: dict[str, np.ndarray]) -> list[str]:
    """One tensor per role: names equal up to their layer numbers (``layers.3.net.0.weight``
    and ``layers.7.net.0.weight``) play the same part, and a deep flow has dozens of each."""
    seen: dict[str, str] = {}
    for k in tensors:
        seen.setdefault(re.sub(r"\d+", "#", k), k)
    return list(seen.values())


def _tensor_mutations(tensors: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    out = []
    for k in _roles(tensors):
        a = tensors[k]
        def put(label: str, new: np.ndarray | None, name: str = k, k: str = k) -> None:
            t = dict(tensors)
            t.pop(k)
            if new is not None:
                t[name] = new
            out.append((f"{k}: {label}", t))

        put("removed", None)
        put("extra row", np.concatenate([a, a[:1]]) if a.ndim and len(a) else np.zeros(1, a.dtype))
        if a.ndim and len(a) > 1:
            put("one row less", a[:-1])
        if a.ndim == 2:
            put("transposed", a.T.copy())
            put("extra column", np.concatenate([a, a[:, :1]], axis=1))
        put("flattened", a.reshape(-1))
        put("extra axis", a[None])
        put("as int8", a.astype(np.int8))
        put("as float16", a.astype(np.float16))
        put("renamed", a, "weird." + k)
        put("as a parameter", a, "param.x")
    return out


def _use(model: Any, X: np.ndarray) -> None:
    for name in ("transform", "predict", "score_samples"):
        fn = getattr(model, name, None)
        if callable(fn):
            fn(X[:8])
            return


def _same_as_file(model: Any, path: str, tmp: str) -> bool:
    out = os.path.join(tmp, "resaved.safetensors")
    model.save(out)
    (m1, t1), (m2, t2) = _read(path), _read(out)
    # a parameter the file leaves out takes its default (files from before it existed)
    return (m1["class"] == m2["class"]
            and all(json.dumps(m1[s].get(k)) == json.dumps(m2[s].get(k))
                    for s in ("params", "fitted") for k in m1[s])
            and t1.keys() == t2.keys()
            and all(t1[k].dtype == t2[k].dtype and np.array_equal(t1[k], t2[k], equal_nan=True)
                    for k in t1))


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_mutated_files_are_refused_or_faithful(spec: Any, tmp_path: Any) -> None:
    cls = spec.cls
    X = toy_data_for(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(**test_params_for(cls)).fit(X)
    good = str(tmp_path / "good.safetensors")
    est.save(good)
    meta, tensors = _read(good)
    cases = [(lbl, m, tensors) for lbl, m in _header_mutations(meta)]
    cases += [(lbl, meta, t) for lbl, t in _tensor_mutations(tensors)]
    problems, refused, loaded = [], 0, 0
    path = str(tmp_path / "crafted.safetensors")
    for label, m, t in cases:
        _write(path, m, t)
        size = os.path.getsize(path)
        tracemalloc.start()
        try:
            model = unsup.load(path)
        except ModelFileError:
            refused += 1
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            problems.append(f"{label}: {type(e).__name__}: {e}"[:200])
            continue
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if peak > MEMORY_FACTOR * size + 2**21:
                problems.append(f"{label}: traced {peak} bytes for a {size}-byte file")
        loaded += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if "(not run)" not in label:
                    _use(model, X)
            if not _same_as_file(model, path, str(tmp_path)):
                problems.append(f"{label}: loaded, but the model is not what the file says")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{label}: loaded, then {type(e).__name__}: {e}"[:200])
    print(f"{spec.name}: {len(cases)} cases, {refused} refused, {loaded} loaded")
    assert len(cases) >= 40
    assert not problems, "\n".join(problems)


def test_huge_network_from_a_small_file_is_refused_without_allocating(tmp_path: Any) -> None:
    """The issue's case: a small autoencoder file claiming hidden layers of 10^5 units (a
    40 GB network) with a recomputed digest: refused before the network exists."""
    from unsup.autoencoders import Autoencoder

    X = toy_data_for(Autoencoder)
    Autoencoder(**test_params_for(Autoencoder)).fit(X).save(tmp_path / "a.safetensors")
    meta, tensors = _read(str(tmp_path / "a.safetensors"))
    sizes = [k for k, v in meta["params"].items() if isinstance(v, list)]
    assert sizes, meta["params"]
    for k in sizes:
        meta["params"][k] = [100_000] * max(1, len(meta["params"][k]))
    meta["fitted"]["n_features_in_"] = 100_000
    crafted = str(tmp_path / "crafted.safetensors")
    _write(crafted, meta, tensors)
    code = ("import resource, unsup\n"
            "from unsup.io import ModelFileError\n"
            "import unsup.autoencoders\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n"
            f"    unsup.load({crafted!r}); print('LOADED')\n"
            "except ModelFileError as e:\n"
            "    print('REFUSED', e)\n"
            "print('GROWTH_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "REFUSED" in r.stdout, r.stdout + r.stderr
    growth_kb = int(r.stdout.split("GROWTH_KB")[1])
    assert growth_kb < 64 * 1024, growth_kb  # a 40 GB network would show here


def test_kmeans_claiming_fewer_clusters_than_centres_is_refused(tmp_path: Any) -> None:
    from unsup.cluster import KMeans

    X = toy_data_for(KMeans)
    KMeans(n_clusters=10, random_state=0).fit(X).save(tmp_path / "k.safetensors")
    meta, tensors = _read(str(tmp_path / "k.safetensors"))
    meta["params"]["n_clusters"] = 3
    _write(str(tmp_path / "c.safetensors"), meta, tensors)
    with pytest.raises(ModelFileError, match=r"cluster_centers_ has shape \(10, 16\) but the "
                                             r"parameters imply \(3, 16\)"):
        unsup.load(tmp_path / "c.safetensors")


@pytest.mark.parametrize("meta_json", [
    "[" * 100_000 + "]" * 100_000,  # nesting: a RecursionError in the JSON parser
    '{"class": "KMeans", "params": ' + "[" * 50_000 + "]" * 50_000 + ', "fitted": {}}',
    '{"class": "KMeans", "params": {"n_clusters": 1e999}, "fitted": {}}',
    '{"class": ["KMeans"]}', '{"class": "KMeans"', "", "null", '"KMeans"',
    '{"class": "KMeans", "params": {"n_clusters": 2}, "fitted": {"n_features_in_": 2}}',
])
def test_raw_metadata_is_refused_cleanly(tmp_path: Any, meta_json: str) -> None:
    tensors = {"fitted.cluster_centers_": np.zeros((2, 3), np.float32)}
    path = str(tmp_path / "j.safetensors")
    save_file(tensors, path, metadata={"format": "unsup", "format_version": "1",
                                       "json": meta_json,
                                       "sha256": _digest(meta_json, tensors)})
    with pytest.raises(ModelFileError):
        unsup.load(path)


def test_a_file_from_before_a_parameter_existed_loads_with_the_old_behaviour(tmp_path: Any
                                                                            ) -> None:
    # CharRNN's `context` came later; a Mario (columns) model file without it is a plain
    # sequence model, not the grid network the new default ("auto") would build
    from unsup.autoregressive import CharRNN

    levels = ["-" * 14 + "X" * 14] * 3
    m = CharRNN(layout="columns", context="sequence", hidden_size=8, embedding_dim=4,
                seq_length=28, epochs=1, random_state=0).fit(levels)
    m.save(tmp_path / "m.safetensors")
    meta, tensors = _read(str(tmp_path / "m.safetensors"))
    del meta["params"]["context"]
    _write(str(tmp_path / "old.safetensors"), meta, tensors)
    old = unsup.load(tmp_path / "old.safetensors")
    assert old.context == "sequence"
    np.testing.assert_array_equal(old.score_samples(levels), m.score_samples(levels))
