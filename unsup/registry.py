"""One registry of models: a model declares itself once, where its class is defined.

::

    @register_model("kmeans", family="cluster", aliases=("k-means",),
                    summary="k-means clustering (Lloyd's algorithm, k-means++ seeding)",
                    demo=Demo("k-means (K=10)", params={"n_clusters": 10}, quick={"n_init": 3}))
    class KMeans(BaseEstimator): ...

Everything that needs to know the models reads this registry: :mod:`unsup.io` (which class a
model file names), ``unsup models``, ``unsup fit NAME``, ``unsup demo``, the docs' model table
(:func:`model_table`) and the conformance tests (``tests/test_common.py``). A name or alias that
is already taken by another class is an error at import time, never a silent overwrite.

Family packages are found, not listed: every sub-package of :mod:`unsup` that is not part of the
platform (:data:`PLATFORM_PACKAGES`) is imported on first use, and so is every module named by an
``unsup.models`` entry point of an installed distribution (third-party models).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Demo", "ModelSpec", "RegistryError", "register_model", "unregister_model",
           "get_model", "model_specs",
           "spec_for", "class_by_name", "load_families", "import_family_modules", "model_table",
           "PLATFORM_PACKAGES"]

T = TypeVar("T", bound=type)

# sub-packages of unsup that are platform layers, not model families
PLATFORM_PACKAGES = frozenset({"data", "metrics", "report", "train", "nn"})


class RegistryError(ValueError):
    """Two models claim the same name, alias or class name."""


@dataclass(frozen=True)
class Demo:
    """How ``unsup demo`` fits a model: a table title and constructor parameters.

    ``quick`` overrides ``params`` under ``unsup demo --quick`` (the smoke-test size);
    ``order`` sorts the demo (lower first; ties keep registration order). ``data``, for a
    model that does not take MNIST digits (text, levels), is a callable ``data(quick) ->
    (name, train, test)`` giving what ``fit`` and ``log_likelihood`` take; the demo fits on
    ``train``, measures the likelihood of ``test`` and lists the model under "other data".
    """

    title: str
    params: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    order: int = 100
    data: Callable[[bool], tuple[str, Any, Any]] | None = None

    def make(self, cls: type, quick: bool = False) -> Any:
        return cls(**{**self.params, **(self.quick if quick else {})})


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its CLI name, aliases, family, one-line summary and demo settings."""

    name: str
    cls: type
    family: str
    summary: str
    aliases: tuple[str, ...] = ()
    demo: Demo | None = None

    def load_class(self) -> type:
        return self.cls


_BY_NAME: dict[str, ModelSpec] = {}
_ALIAS: dict[str, str] = {}
_BY_CLASS: dict[str, ModelSpec] = {}
_loaded = False


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _same(a: type, b: type) -> bool:
    """The same class defined again (a module re-imported), not a different class."""
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


def register_model(name: str, *, family: str, summary: str, aliases: tuple[str, ...] = (),
                   demo: Demo | None = None) -> Callable[[T], T]:
    """Class decorator: register a model under ``name`` (and ``aliases``) in ``family``.

    Raises :class:`RegistryError` when a name, alias or class name is already taken by a
    different class.
    """
    keys = [_key(name), *(_key(a) for a in aliases)]
    if len(set(keys)) != len(keys):
        raise RegistryError(f"model {name!r} lists a name twice among its aliases {aliases}")

    def deco(cls: T) -> T:
        spec = ModelSpec(keys[0], cls, family, summary, tuple(keys[1:]), demo)
        for k in keys:
            owner = _BY_NAME.get(k) or _BY_NAME.get(_ALIAS.get(k, ""))
            if owner is not None and not _same(owner.cls, cls):
                raise RegistryError(f"cannot register {cls.__qualname__} as {k!r}: that name "
                                    f"belongs to {owner.cls.__module__}.{owner.cls.__qualname__}")
        prev = _BY_CLASS.get(cls.__name__)
        if prev is not None and not _same(prev.cls, cls):
            raise RegistryError(f"two model classes are named {cls.__name__}: "
                                f"{prev.cls.__module__} and {cls.__module__}; model files name "
                                "the class, so class names must be unique")
        if prev is not None:  # re-import: drop the old entry's names first
            _BY_NAME.pop(prev.name, None)
            for a in prev.aliases:
                _ALIAS.pop(a, None)
        _BY_NAME[spec.name] = spec
        for a in spec.aliases:
            _ALIAS[a] = spec.name
        _BY_CLASS[cls.__name__] = spec
        return cls

    return deco


def unregister_model(model: type | str) -> None:
    """Remove a model (class or name) from the registry; for tests and interactive sessions."""
    spec = spec_for(model) if isinstance(model, type) else _BY_NAME.get(_key(model))
    if spec is None:
        raise ValueError(f"{model!r} is not a registered model")
    _BY_NAME.pop(spec.name, None)
    for a in spec.aliases:
        _ALIAS.pop(a, None)
    _BY_CLASS.pop(spec.cls.__name__, None)


def load_families() -> None:
    """Import every family package (and ``unsup.models`` entry points) once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import unsup

    for info in pkgutil.iter_modules(unsup.__path__):
        if info.ispkg and info.name not in PLATFORM_PACKAGES:
            importlib.import_module(f"unsup.{info.name}")
    from importlib.metadata import entry_points

    for ep in entry_points(group="unsup.models"):
        importlib.import_module(ep.value.split(":")[0])


def import_family_modules(package: str, namespace: dict[str, Any]) -> list[str]:
    """Import every public module of a family package and export its ``__all__``.

    Called from a family's ``__init__`` as ``__all__ = import_family_modules(__name__,
    globals())``: a model is one new file in its family, with no list to edit. Private modules
    (leading underscore) are imported by the model files that need them. Returns the exported
    names, in module-name order.
    """
    pkg = importlib.import_module(package)
    exported: list[str] = list(namespace.get("__all__", ()))
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{package}.{info.name}")
        for name in getattr(mod, "__all__", ()):
            namespace[name] = getattr(mod, name)
            if name not in exported:
                exported.append(name)
    return exported


def model_specs(family: str | None = None) -> list[ModelSpec]:
    """Every registered model (optionally of one family): by family, then registration order.

    Sorting by family keeps the order independent of which family happened to be imported
    first; within a family it is the family's own import order.
    """
    load_families()
    specs = [s for s in _BY_NAME.values() if family is None or s.family == family]
    return sorted(specs, key=lambda s: s.family)


def get_model(name: str) -> ModelSpec:
    """The model registered under ``name`` or one of its aliases (case-insensitive)."""
    load_families()
    k = _key(name)
    k = _ALIAS.get(k, k)
    if k not in _BY_NAME:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_BY_NAME)}")
    return _BY_NAME[k]


def spec_for(model: Any) -> ModelSpec | None:
    """The spec of a model instance or class (``None`` for unregistered classes)."""
    cls = model if isinstance(model, type) else type(model)
    spec = _BY_CLASS.get(cls.__name__)
    return spec if spec is not None and spec.cls is cls else None


def class_by_name(class_name: str) -> type | None:
    """The registered class called ``class_name`` (what a model file names), or ``None``."""
    load_families()
    spec = _BY_CLASS.get(class_name)
    return None if spec is None else spec.cls


def model_table() -> str:
    """The docs' model table (markdown): name, aliases, family, class, summary."""
    rows = ["| name | aliases | family | class | what it is |", "| --- | --- | --- | --- | --- |"]
    for s in model_specs():
        summary = s.summary.replace("|", "\\|")  # a bare | would split the markdown cell
        rows.append(f"| `{s.name}` | {', '.join(f'`{a}`' for a in s.aliases)} | {s.family} | "
                    f"`{s.cls.__module__.rsplit('.', 1)[0]}.{s.cls.__name__}` | {summary} |")
    return "\n".join(rows)
