"""Parameter groups: composed signatures, scikit-learn machinery, declared constraints."""

from __future__ import annotations

import inspect

import pytest
from sklearn.base import clone

from unsup.base import BaseEstimator
from unsup.params import (
    Integral,
    Interval,
    InvalidParameterError,
    Param,
    ParamGroup,
    Real,
    StrOptions,
    group_docs,
)

LOOP = ParamGroup("loop", [
    Param("epochs", 5, [Interval(Integral, 1, None, closed="left")], "Passes over the data."),
    Param("lr", 0.1, [Interval(Real, 0, None, closed="neither")], "Step size."),
    Param("opt", "sgd", [StrOptions({"sgd", "adam"})], "Optimiser."),
])
EXTRA = ParamGroup("extra", [Param("lr", 9.0, "no_validation", "shared name"),
                             Param("noise", 0.0, [Interval(Real, 0, 1, closed="both")], "p")])


class Base(BaseEstimator):
    _param_groups = (LOOP,)
    _parameter_constraints = {"k": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, k: int = 3, *, tag: str = "x") -> None:
        self.k = k
        self.tag = tag

    def fit(self, X=None, y=None):
        self._validate_params()
        return self


class Child(Base):
    _param_groups = (EXTRA,)

    def __init__(self, k: int = 4, *, lr: float = 0.5) -> None:
        super().__init__(k=k)
        self.lr = lr


def test_signature_is_own_parameters_then_groups():
    assert list(inspect.signature(Base.__init__).parameters) == [
        "self", "k", "tag", "epochs", "lr", "opt"]
    # the class's own lr overrides both groups' defaults; groups of bases are inherited
    sig = inspect.signature(Child.__init__).parameters
    assert list(sig) == ["self", "k", "lr", "epochs", "opt", "noise"]
    assert sig["lr"].default == 0.5 and sig["epochs"].default == 5


def test_values_are_stored_unchanged_and_clone_works():
    est = Child(2, epochs=7, noise=0.25, opt="adam")
    assert est.get_params() == {"k": 2, "lr": 0.5, "epochs": 7, "opt": "adam", "noise": 0.25}
    assert clone(est).get_params() == est.get_params()
    assert Base().epochs == 5  # defaults when not given


def test_unknown_argument_names_the_class():
    with pytest.raises(TypeError, match=r"Base\(\).*unexpected keyword argument 'zz'"):
        Base(zz=1)


@pytest.mark.parametrize("kw, name", [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"),
                                      ({"opt": "lbfgs"}, "opt"), ({"k": 0}, "k")])
def test_constraints_are_checked_in_fit(kw, name):
    est = Base(**kw)  # construction never validates (scikit-learn's contract)
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of Base"):
        est.fit()


def test_child_inherits_and_adds_constraints():
    Child(noise=0.5).fit()
    with pytest.raises(InvalidParameterError, match="'noise'"):
        Child(noise=2.0).fit()
    with pytest.raises(InvalidParameterError, match="'epochs'"):
        Child(epochs=-3).fit()


def test_group_docs_feed_the_cli():
    docs = group_docs(Child)
    assert docs["epochs"] == "Passes over the data." and docs["noise"] == "p"


def test_star_kwargs_are_refused():
    with pytest.raises(TypeError, match="explicitly"):
        class Bad(BaseEstimator):
            _param_groups = (LOOP,)

            def __init__(self, **kw) -> None:
                pass


class SetsFirst(Base):
    """Sets a re-declared group parameter before calling super().__init__()."""

    def __init__(self, k: int = 4, *, epochs: int = 50) -> None:
        self.epochs = epochs
        super().__init__(k=k)


def test_super_init_does_not_reset_a_redeclared_default():
    assert SetsFirst().epochs == 50 and SetsFirst(epochs=8).epochs == 8
    assert SetsFirst(lr=0.3).lr == 0.3 and SetsFirst().lr == 0.1
    assert clone(SetsFirst(epochs=9)).epochs == 9


class Defaults(Child):
    """Only changes defaults: an own parameter of a base and a group parameter."""

    _param_defaults = {"k": 7, "epochs": 11}


def test_param_defaults_change_defaults_without_repeating_the_signature():
    sig = inspect.signature(Defaults.__init__).parameters
    assert sig["k"].default == 7 and sig["epochs"].default == 11 and sig["lr"].default == 0.5
    d = Defaults()
    assert (d.k, d.epochs, d.lr) == (7, 11, 0.5)
    assert Defaults(3, epochs=2).get_params()["k"] == 3 and Defaults(epochs=2).epochs == 2
    assert clone(Defaults(noise=0.5)).get_params() == Defaults(noise=0.5).get_params()
    with pytest.raises(TypeError, match="unexpected"):
        Defaults(zz=1)


def test_param_defaults_must_name_known_parameters():
    with pytest.raises(TypeError, match="unknown parameters"):
        class Bad(Child):
            _param_defaults = {"nope": 1}
