"""Parameter groups: shared constructor parameters declared once, composed into estimators.

A group (the training loop, CD/PCD sampling, ...) lists its parameters with default, constraint
and one line of documentation::

    SAMPLING = ParamGroup("sampling", [
        Param("cd_steps", 1, [Interval(Integral, 1, None, closed="left")], "Gibbs steps of CD-k."),
        Param("persistent", False, ["boolean"], "PCD: keep the negative chains between updates."),
    ])

    class BernoulliRBM(ParamsMixin, BaseEstimator):
        _param_groups = (SAMPLING,)
        _parameter_constraints = {"n_components": [Interval(Integral, 1, None, closed="left")]}

        def __init__(self, n_components=256, *, learning_rate=0.1):  # its own parameters only
            ...

The class's ``__init__`` gets a real signature made of its own parameters followed by the groups'
(keyword-only, with their defaults), so scikit-learn's ``get_params`` / ``clone`` and the CLI's
generated options see every parameter, and the group values are stored unchanged as attributes.
Subclasses inherit the groups of their bases. Constraints use scikit-learn's declarative
vocabulary (:mod:`sklearn.utils._param_validation`: ``Interval``, ``StrOptions``, ``"boolean"``,
``None``, types) and are checked once, by :meth:`ParamsMixin._validate_params` at the start of
``fit``, with scikit-learn's error messages (``InvalidParameterError``, a ``ValueError``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = ["Param", "ParamGroup", "ParamsMixin", "Interval", "StrOptions", "Integral", "Real",
           "InvalidParameterError", "group_docs"]


@dataclass(frozen=True)
class Param:
    """One shared parameter: name, default, scikit-learn style constraints, one-line doc."""

    name: str
    default: Any
    constraints: list[Any] | str
    doc: str
    type_doc: str = ""


class ParamGroup:
    """A named, ordered set of :class:`Param` shared by several estimators."""

    def __init__(self, name: str, params: Iterable[Param]) -> None:
        self.name = name
        self.params = tuple(params)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter group {name!r} lists a parameter twice")

    def __iter__(self):  # noqa: ANN204
        return iter(self.params)

    def __repr__(self) -> str:
        return f"ParamGroup({self.name!r}, {[p.name for p in self.params]})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def constraints(self) -> dict[str, Any]:
        return {p.name: p.constraints for p in self.params}

    def doc_block(self, indent: str = "    ") -> str:
        """numpydoc ``Parameters`` entries for the group (for class docstrings)."""
        lines = []
        for p in self.params:
            lines.append(f"{indent}{p.name} : {p.type_doc or type(p.default).__name__}")
            lines.append(f"{indent}    {p.doc}")
        return "\n".join(lines)


def _groups_of(cls: type) -> tuple[ParamGroup, ...]:
    seen: dict[str, ParamGroup] = {}
    for klass in reversed(cls.__mro__):
        for g in klass.__dict__.get("_param_groups", ()):
            seen[g.name] = g
    return tuple(seen.values())


def group_docs(cls: type) -> dict[str, str]:
    """One-line docs of every group parameter of ``cls`` (the CLI's help texts)."""
    return {p.name: p.doc for g in _groups_of(cls) for p in g.params}


def _compose_init(cls: type, groups: tuple[ParamGroup, ...]) -> None:
    own = cls.__dict__["__init__"]
    own = getattr(own, "__wrapped_own__", own)
    sig = inspect.signature(own)
    params = list(sig.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise TypeError(f"{cls.__name__}.__init__ takes *args/**kwargs; estimators with "
                        "parameter groups list their own parameters explicitly")
    own_names = {p.name for p in params}
    extra: list[inspect.Parameter] = []
    group_defaults: dict[str, Any] = {}
    for g in groups:
        for p in g.params:
            if p.name in own_names or p.name in group_defaults:
                continue  # the class overrides the shared default, or two groups share it
            group_defaults[p.name] = p.default
            extra.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY,
                                           default=p.default))
    # keyword-only parameters must follow the positional ones
    positional = [p for p in params if p.kind != p.KEYWORD_ONLY]
    keyword = [p for p in params if p.kind == p.KEYWORD_ONLY]
    new_sig = sig.replace(parameters=[*positional, *keyword, *extra])

    @functools.wraps(own)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            new_sig.bind(self, *args, **kwargs)
        except TypeError as e:  # unknown or missing arguments, named with the class
            raise TypeError(f"{type(self).__name__}(): {e}") from None
        given = {n: kwargs.pop(n) for n in group_defaults if n in kwargs}
        own(self, *args, **kwargs)
        # Reached through a subclass's super().__init__(), only explicit values and missing
        # attributes are set, so a default the subclass declared itself is never reset.
        outermost = type(self).__init__ is __init__
        for n, d in group_defaults.items():  # stored unchanged, as scikit-learn requires
            if n in given:
                setattr(self, n, given[n])
            elif outermost or not hasattr(self, n):
                setattr(self, n, d)

    __init__.__signature__ = new_sig  # type: ignore[attr-defined]
    __init__.__wrapped_own__ = own  # type: ignore[attr-defined]
    del __init__.__wrapped__  # inspect.signature must read __signature__, not the original
    cls.__init__ = __init__  # type: ignore[misc]


def _override_defaults(cls: type, overrides: dict[str, Any]) -> None:
    """Give ``cls`` its parent's ``__init__`` with other defaults (``_param_defaults``)."""
    parent = cls.__init__
    sig = inspect.signature(parent)
    unknown = sorted(set(overrides) - set(sig.parameters))
    if unknown:
        raise TypeError(f"{cls.__name__}._param_defaults names unknown parameters {unknown}")
    new_sig = sig.replace(parameters=[
        p.replace(default=overrides[p.name]) if p.name in overrides else p
        for p in sig.parameters.values()])

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            given = new_sig.bind_partial(self, *args, **kwargs).arguments
        except TypeError as e:
            raise TypeError(f"{type(self).__name__}(): {e}") from None
        for n, d in overrides.items():
            if n not in given:
                kwargs[n] = d
        parent(self, *args, **kwargs)

    __init__.__signature__ = new_sig  # type: ignore[attr-defined]
    __init__.__doc__ = parent.__doc__
    cls.__init__ = __init__  # type: ignore[misc]


class ParamsMixin:
    """Composes ``_param_groups`` into ``__init__`` and validates constraints once in ``fit``.

    ``_parameter_constraints`` of a class is merged with its bases' and with its groups', so a
    class declares constraints only for the parameters it introduces. A subclass that only
    changes defaults declares ``_param_defaults = {name: default}`` instead of repeating its
    parent's ``__init__`` (e.g. ``IWAE`` is a ``VAE`` with ``n_importance_samples=5``).
    """

    _param_groups: tuple[ParamGroup, ...] = ()
    _parameter_constraints: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        groups = _groups_of(cls)
        merged: dict[str, Any] = {}
        for g in groups:
            merged.update(g.constraints())
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("_parameter_constraints", {}))
        cls._parameter_constraints = merged
        if groups and "__init__" in cls.__dict__:
            _compose_init(cls, groups)
        overrides = cls.__dict__.get("_param_defaults")
        if overrides:
            if "__init__" in cls.__dict__:
                raise TypeError(f"{cls.__name__} defines __init__ and _param_defaults: put the "
                                "defaults in its __init__ signature")
            _override_defaults(cls, dict(overrides))

    def _validate_params(self) -> None:
        """Check every declared constraint against the current parameters (call in ``fit``)."""
        validate_parameter_constraints(self._parameter_constraints,
                                       self.get_params(deep=False),  # type: ignore[attr-defined]
                                       caller_name=type(self).__name__)
