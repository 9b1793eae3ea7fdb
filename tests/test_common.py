"""One conformance suite over every registered model (issue 9, §7).

Parametrised over :func:`unsup.registry.model_specs`, so a new model is tested by registering
it, with no edit here. For each model:

- scikit-learn's ``check_estimator`` (expected failures listed below, each with its reason);
- a save / load round trip gives identical outputs of every capability;
- a tiny ``unsup fit`` run, whose ``unsup evaluate`` leaves the model file byte-identical and
  whose ``unsup sample`` is seeded (or refused, for models that cannot sample);
- measuring (``evaluate_model``, ``likelihood_of``, the report) leaves the fitted state as it was;
- bad input (NaN, wrong width, empty, 1-D) is answered by a clear ``ValueError``.

The helpers (``check_*``) are also used by ``tests/test_registry.py`` on a toy model.
Small constructor parameters come from the class's ``_test_params``; toy data of the kind
it accepts (``_test_data``) from ``conftest.toy_data_for``.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import test_params_for, toy_data_for
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_estimator

import unsup
from unsup.cli import main
from unsup.likelihood import likelihood_of
from unsup.registry import model_specs
from unsup.report.sections import draw_samples

pytestmark = pytest.mark.usefixtures("one_thread")

SPECS = model_specs()
IDS = [s.name for s in SPECS]

# A model lists the scikit-learn checks it is known to fail, with the reason, where it is
# defined: ``_expected_failed_checks = {check name: reason}`` on the class. The suite passes
# them to check_estimator and fails when the list is stale (a listed check that passes).


CAPABILITIES = ("transform", "predict", "predict_proba", "score_samples", "score", "sample")


def _missing_transformer_tags(cls: type) -> bool:
    """check_estimator refuses a model with ``transform`` but no transformer tags."""
    try:
        est = cls(**test_params_for(cls))
        return callable(getattr(est, "transform", None)) and get_tags(est).transformer_tags is None
    except Exception:  # a class that cannot even be built fails the check itself
        return False


def _call(fn: Any, *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def _fit(cls: type, X: np.ndarray) -> Any:
    return _call(cls(**test_params_for(cls)).fit, X)


def outputs(model: Any, X: np.ndarray) -> dict[str, Any]:
    """Every capability's output on ``X`` (seeded where random)."""
    out: dict[str, Any] = {}
    for cap in CAPABILITIES:
        fn = getattr(model, cap, None)
        if not callable(fn):
            continue
        if cap == "sample":
            out[cap] = _call(draw_samples, model, 5, 0)
        else:
            out[cap] = np.asarray(_call(fn, X))
    if "transform" in out and callable(getattr(model, "inverse_transform", None)):
        out["inverse_transform"] = np.asarray(_call(model.inverse_transform, out["transform"]))
    lk = _call(likelihood_of, model, X)
    if lk is not None:
        out["likelihood"] = lk.to_dict()
    return out


# -- the checks, reusable on any registered class ---------------------------------------------
def check_sklearn(cls: type) -> None:
    est = cls(**test_params_for(cls))
    expected = dict(getattr(cls, "_expected_failed_checks", {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_estimator(est, expected_failed_checks=expected, on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in res if r["status"] == "failed"}
    assert not failed, f"{cls.__name__} fails scikit-learn checks: {failed}"
    passing = set(expected) - {r["check_name"] for r in res if r["status"] == "xfail"}
    assert not passing, f"{cls.__name__}._expected_failed_checks is stale: {sorted(passing)} pass"


def check_round_trip(cls: type, tmp_path: Path) -> None:
    X = toy_data_for(cls)
    model = _fit(cls, X)
    path = tmp_path / "model.safetensors"
    model.save(path)
    before = outputs(model, X)
    assert before, f"{cls.__name__} has none of the capabilities {CAPABILITIES}"
    loaded = unsup.load(path)
    assert type(loaded) is cls
    after = outputs(loaded, X)
    assert set(after) == set(before)
    for k, v in before.items():
        if isinstance(v, dict):
            assert after[k] == v, k
        else:
            np.testing.assert_array_equal(after[k], v, err_msg=k)


def _cli_value(v: Any) -> list[str]:
    if isinstance(v, (tuple, list)):
        return [str(list(v))]
    return [str(v)]


def check_cli_fit(spec: Any, tmp_path: Path) -> dict[str, Any]:
    """``unsup fit NAME`` on toy data, then ``unsup evaluate`` (file untouched)."""
    cls = spec.cls
    X = toy_data_for(cls)
    data = tmp_path / "x.npy"
    np.save(data, X)
    out = tmp_path / "run"
    args = ["fit", spec.name, "--data", str(data), "--out", str(out), "-q"]
    for k, v in test_params_for(cls).items():
        if isinstance(v, bool):
            args.append(f"--{k.replace('_', '-')}" if v else f"--no-{k.replace('_', '-')}")
        else:
            args += [f"--{k.replace('_', '-')}", *_cli_value(v)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(args)
    assert code == 0, args
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == spec.name and run["class"] == cls.__name__
    assert run["n_samples"] == len(X) and run["n_features"] == X.shape[1]
    model = unsup.load(out)
    assert type(model) is cls
    for k, v in test_params_for(cls).items():
        got = model.get_params()[k]
        assert (list(got) if isinstance(got, tuple) else got) == (
            list(v) if isinstance(v, tuple) else v), k
    metrics = json.loads((out / "metrics.json").read_text())["train"]
    assert metrics["n_samples"] == len(X)
    if callable(getattr(model, "score_samples", None)):  # density: a typed likelihood
        assert metrics["likelihood"]["support"] in ("discrete", "continuous")
        assert metrics["log_likelihood"] == metrics["likelihood"]["nats"]
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["evaluate", str(out), "--json"]) == 0
    assert hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest() == digest
    # unsup sample: every model that can sample, seeded; a clear refusal for the others
    draws = []
    for i in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["sample", str(out), "--n", "4", "--out", str(tmp_path / f"s{i}.npy"),
                         "--seed", "0"])
        if not callable(getattr(model, "sample", None)):
            assert code == 2 and not (tmp_path / f"s{i}.npy").exists()
            break
        assert code == 0
        draws.append(np.load(tmp_path / f"s{i}.npy"))
    if draws:
        assert draws[0].shape == (4, X.shape[1])
        np.testing.assert_array_equal(draws[0], draws[1])
    return metrics


def _state(model: Any) -> tuple[dict[str, np.ndarray], str]:
    arrays, values = model._get_state()
    return ({k: np.array(v, copy=True) for k, v in arrays.items()},
            json.dumps(values, sort_keys=True, default=repr))


def check_measuring_never_mutates(cls: type) -> None:
    """evaluate_model and the report read a model; they never change its state."""
    from unsup.metrics import evaluate_model
    from unsup.report import model_report

    X = toy_data_for(cls)
    model = _fit(cls, X)
    arrays, values = _state(model)
    params = repr(model.get_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_model(model, X)
        likelihood_of(model, X)
        model_report(model, X, image_shape=(4, 4) if X.shape[1] == 16 else None)
    arrays_after, values_after = _state(model)
    assert values_after == values
    assert set(arrays_after) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(arrays_after[k], v, err_msg=k)
    assert repr(model.get_params()) == params


BAD_INPUTS = {
    "nan": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X),
            r"nan|infinit|finite"),
    "wrong width": (lambda X: X[:, :-1], r"feature|column|width|shape"),
    "empty": (lambda X: X[:0], r"empty|0 sample|n_samples|at least"),
    "1-D": (lambda X: X[0], r"2[- ]?D|1[- ]?D|reshape|dimension"),
}


# (class name, bad input) -> why it is not bad for that model
BAD_INPUT_NOT_BAD: dict[tuple[str, str], str] = {
    ("CollaborativeFilteringRBM", "nan"): "NaN marks a missing rating in a ratings matrix",
}


def check_bad_input(cls: type, kind: str) -> None:
    if (cls.__name__, kind) in BAD_INPUT_NOT_BAD:
        pytest.skip(BAD_INPUT_NOT_BAD[cls.__name__, kind])
    X = toy_data_for(cls)
    model = _fit(cls, X)
    make, pattern = BAD_INPUTS[kind]
    bad = make(X.astype(np.float64))
    methods = [m for m in ("transform", "predict", "predict_proba", "score_samples", "score")
               if callable(getattr(model, m, None))]
    for m in methods:
        with pytest.raises(ValueError, match=re.compile(pattern, re.I)):
            _call(getattr(model, m), bad)
    if kind != "wrong width":  # fit itself refuses NaN, empty and 1-D data
        with pytest.raises(ValueError, match=re.compile(pattern, re.I)):
            _call(cls(**test_params_for(cls)).fit, bad)


# -- the suite ------------------------------------------------------------------------------
def _sklearn_param(spec: Any) -> Any:
    marks = []
    if _missing_transformer_tags(spec.cls):
        marks.append(pytest.mark.xfail(
            raises=RuntimeError, strict=True,
            reason=f"{spec.cls.__name__} has transform but no scikit-learn transformer tags "
                   "(TransformerMixin before BaseEstimator, or __sklearn_tags__ setting "
                   "transformer_tags): check_estimator refuses it; owned by its family"))
    return pytest.param(spec.cls, id=spec.name, marks=marks)


@pytest.mark.parametrize("cls", [_sklearn_param(s) for s in SPECS])
def test_check_estimator(cls):
    check_sklearn(cls)


@pytest.mark.parametrize("cls", [s.cls for s in SPECS], ids=IDS)
def test_save_load_round_trip(cls, tmp_path):
    check_round_trip(cls, tmp_path)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_cli_fit_and_evaluate_leave_file(spec, tmp_path):
    check_cli_fit(spec, tmp_path)


@pytest.mark.parametrize("cls", [s.cls for s in SPECS], ids=IDS)
def test_measuring_never_mutates(cls):
    check_measuring_never_mutates(cls)


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
@pytest.mark.parametrize("cls", [s.cls for s in SPECS], ids=IDS)
def test_bad_input_clear_error(cls, kind):
    check_bad_input(cls, kind)


def test_every_model_is_covered():
    """The suite runs on the registry: every registered class is parametrised above."""
    assert {s.cls for s in model_specs() if s.family != "test"} <= {s.cls for s in SPECS}
    assert len(SPECS) >= 15
