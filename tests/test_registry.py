"""Register once (issue 9, §1): a toy model defined here, with no edit to any central file,
appears in ``unsup models``, fits with ``unsup fit``, saves, loads and passes the conformance
suite; a name or alias clash is an error at decoration time.

The walk-through of the toy model is ``docs/adding-a-model.md``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import TransformerMixin
from test_common import check_bad_input, check_cli_fit, check_round_trip, check_sklearn

import unsup
from unsup import registry
from unsup.base import BaseEstimator
from unsup.cli import main
from unsup.params import Interval, Real
from unsup.registry import Demo, RegistryError, register_model

# how a model registers (docs/adding-a-model.md writes it as a decorator on the class:
# ``@register_model("toy-mean", family="test", ...)``). Here the fixture ``toy`` applies it for
# each test and removes the entry afterwards, so that no other test sees the toy.
TOY_REGISTRATION = dict(name="toy-mean", family="test", aliases=("toy",),
                        summary="isotropic Gaussian around the data mean (a toy)",
                        demo=Demo("toy mean", params={"scale": 0.5}))


class ToyMean(TransformerMixin, BaseEstimator):
    """An isotropic Gaussian N(mean, scale² I) around the data mean.

    Parameters
    ----------
    scale : float, default=1.0
        Standard deviation of every coordinate.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute.
    random_state : int or None, default=None
        Seed of :meth:`sample`.
    """

    _parameter_constraints = {"scale": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, scale=1.0, device="auto", random_state=None):
        self.scale = scale
        self.device = device
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_params()
        X = self._validate(X, reset=True, dtype=torch.float64)
        self.mean_ = X.mean(0).cpu().numpy()
        return self

    def transform(self, X):
        return self._validate(X, reset=False, dtype=torch.float64).cpu().numpy() - self.mean_

    def inverse_transform(self, Z):
        return np.asarray(Z, dtype=np.float64) + self.mean_

    def score_samples(self, X):
        Z = self.transform(X) / self.scale
        return -0.5 * (Z**2).sum(1) - Z.shape[1] * np.log(self.scale * np.sqrt(2 * np.pi))

    def score(self, X, y=None):
        return float(self.score_samples(X).mean())

    def sample(self, n_samples=1, random_state=None):
        rng = np.random.default_rng(self.random_state if random_state is None
                                    else random_state)
        return self.mean_ + self.scale * rng.standard_normal((n_samples, self.mean_.size))


def unregister(cls: type) -> None:
    """Remove a test model from the registry (if it is still there)."""
    if registry.spec_for(cls) is not None:
        registry.unregister_model(cls)


@pytest.fixture
def toy():
    cls = register_model(**TOY_REGISTRATION)(ToyMean)
    yield cls
    unregister(cls)


def test_toy_model_is_listed_and_found(toy, capsys):
    assert main(["models"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("toy-mean")]
    assert len(listed) == 1 and "test" in listed[0] and "toy" in listed[0]
    assert registry.get_model("TOY").cls is toy  # alias, any case
    assert registry.class_by_name("ToyMean") is toy
    assert "| `toy-mean` | `toy` | test |" in registry.model_table()
    from unsup.demo import demo_entries

    entry = next(e for e in demo_entries() if e.name == "toy-mean")
    assert entry.make().scale == 0.5


def test_toy_model_fits_from_the_cli_saves_and_loads(toy, tmp_path, capsys):
    metrics = check_cli_fit(registry.get_model("toy-mean"), tmp_path)
    model = unsup.load(tmp_path / "run")
    assert type(model) is toy
    # the likelihood unsup fit measured is the toy's own closed form, typed as continuous
    assert metrics["likelihood"]["kind"] == "exact"
    assert metrics["likelihood"]["support"] == "continuous"
    X = np.load(tmp_path / "x.npy")
    assert metrics["log_likelihood"] == pytest.approx(model.score(X), rel=1e-9)
    assert main(["fit", "toy", "--data", str(tmp_path / "x.npy"), "--out",
                 str(tmp_path / "bad"), "--scale", "-1", "-q"]) == 2
    assert "scale" in capsys.readouterr().err


def test_toy_model_passes_the_conformance_suite(toy, tmp_path):
    check_sklearn(toy)
    check_round_trip(toy, tmp_path)
    for kind in ("nan", "wrong width", "empty", "1-D"):
        check_bad_input(toy, kind)


def test_toy_model_is_removed_after_the_test():
    assert registry.class_by_name("ToyMean") is None
    with pytest.raises(ValueError, match="unknown model"):
        registry.get_model("toy-mean")


def test_name_or_alias_clash_is_an_error_at_decoration(toy):
    class Other(BaseEstimator):
        pass

    with pytest.raises(RegistryError, match="toy-mean"):
        register_model("toy-mean", family="test", summary="clash")(Other)
    with pytest.raises(RegistryError, match="'toy'"):
        register_model("other-toy", family="test", summary="clash", aliases=("toy",))(Other)
    with pytest.raises(RegistryError, match="kmeans"):  # a built-in model's name
        register_model("K_Means", family="test", summary="clash")(Other)
    with pytest.raises(RegistryError, match="twice"):
        register_model("x", family="test", summary="", aliases=("X",))
    # nothing was registered by the failed attempts, and the toy is intact
    assert registry.spec_for(Other) is None and registry.get_model("toy").cls is toy


def test_two_classes_with_one_class_name_clash(toy):
    """Model files name the class: a second class of the same name is refused."""
    ToyMean = type("ToyMean", (BaseEstimator,), {"__module__": "elsewhere"})
    with pytest.raises(RegistryError, match="two model classes are named ToyMean"):
        register_model("toy-mean-2", family="test", summary="clash")(ToyMean)


def test_readme_model_table_is_the_generated_one(capsys):
    """README's model table is ``unsup models --markdown``: regenerate it, never edit it."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start, end = "<!-- model-table:start -->\n", "\n<!-- model-table:end -->"
    assert start in readme and end in readme
    table = readme[readme.index(start) + len(start):readme.index(end)]
    assert main(["models", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == registry.model_table()
    assert table == registry.model_table(), (
        "README.md's model table is stale: replace it with the output of "
        "`unsup models --markdown`")


class ToyChars(ToyMean):
    """Samples text (one string per sample): for ``unsup sample``'s text output."""

    def sample(self, n_samples=1, random_state=None):
        x = super().sample(n_samples, random_state)
        return np.array(["".join(np.where(row > self.mean_, "b", "a")) for row in x])


def test_text_samples_are_written_as_text(tmp_path, capsys):
    cls = register_model("toy-chars", family="test", summary="samples text (a toy)")(ToyChars)
    try:
        X = np.random.default_rng(0).normal(size=(30, 5))
        np.save(tmp_path / "x.npy", X)
        assert main(["fit", "toy-chars", "--data", str(tmp_path / "x.npy"), "--out",
                     str(tmp_path / "run"), "-q"]) == 0
        assert type(unsup.load(tmp_path / "run")) is cls
        assert main(["sample", str(tmp_path / "run"), "--n", "7", "--out",
                     str(tmp_path / "s.txt"), "--seed", "1"]) == 0
        lines = (tmp_path / "s.txt").read_text().splitlines()
        assert len(lines) == 7 and all(len(t) == 5 and set(t) <= {"a", "b"} for t in lines)
        capsys.readouterr()
        assert main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "s.npy")]) == 2
        assert "samples text" in capsys.readouterr().err
    finally:
        unregister(cls)
