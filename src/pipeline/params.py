"""Base class of the frozen parameter dataclasses that config sections fill.

Every stage's parameters are a ``@dataclass(frozen=True)`` subclass of :class:`Params`
with a commented default per field. The config section is turned into it with
:meth:`Params.from_mapping` (unknown keys are errors naming them); ``__post_init__``
calls :meth:`Params._coerce_field_types` and then checks ranges.

What a rule passes as ``params`` (and so what reruns a finished job when it changes) is
:meth:`Params.result_params`: only the fields that change a job's result and differ from
their default. Fields that say where or how fast a job runs (device, threads, GPUs, memory,
time limit) are listed in the class's ``RUNTIME_FIELDS`` and never enter params; a field
added later with a default that keeps the old behaviour does not change any job's params.
The job rebuilds the full parameters with :meth:`Params.from_mapping` (defaults filled in).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, fields
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np


class Params:
    """Mixin for frozen parameter dataclasses read from a config section."""

    #: Fields that choose where or how fast a job runs, not what it computes (left out of params).
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None):
        """Build from a (YAML) mapping; unknown keys raise ValueError naming them."""
        values = dict(mapping or {})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown {cls.__name__} key(s): {', '.join(map(repr, unknown))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def default_values(cls) -> dict[str, Any]:
        """Every field's declared default (not validated: some classes need a field set)."""
        return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(cls)}

    def defaults(self) -> dict[str, Any]:
        """What :meth:`result_params` compares this instance with: the declared defaults
        (subclasses whose defaults depend on a field, such as a model kind, override this)."""
        return self.default_values()

    def result_params(self, only: Iterable[str] | None = None) -> dict[str, Any]:
        """The fields that change a job's result and differ from their default (nested
        mappings: only their differing keys), restricted to ``only`` when given: what a
        rule passes as params. ``from_mapping`` of the returned dict, plus the runtime
        fields, rebuilds this instance."""
        names = [f.name for f in fields(self) if f.name not in self.RUNTIME_FIELDS]
        if only is not None:
            only = list(only)
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise ValueError(f"{type(self).__name__} has no result field(s) {unknown}")
            names = [name for name in names if name in only]
        return changed_values({name: getattr(self, name) for name in names}, self.defaults())

    def runtime_settings(self) -> dict[str, Any]:
        """The ``RUNTIME_FIELDS`` and their values (what jobs read from the config, not params)."""
        return {name: getattr(self, name) for name in self.RUNTIME_FIELDS}

    def _coerce_field_types(self) -> None:
        """Check and normalise field values by their annotation: ``int`` (integral numbers,
        not bools), ``float`` (finite numbers, stored as float), ``bool``, and
        ``tuple[float, ...]`` (any sequence of numbers, stored as a tuple of floats)."""
        name = type(self).__name__
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if kind == "int":
                if isinstance(value, (bool, np.bool_)) or not (
                    isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
                ):
                    raise ValueError(f"{name}.{f.name} must be an int, got {value!r}")
                object.__setattr__(self, f.name, int(value))
            elif kind == "float":
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
                        or not math.isfinite(float(value)):
                    raise ValueError(f"{name}.{f.name} must be a finite number, got {value!r}")
                object.__setattr__(self, f.name, float(value))
            elif kind == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"{name}.{f.name} must be true or false, got {value!r}")
                object.__setattr__(self, f.name, bool(value))
            elif kind.startswith("tuple[float"):
                try:
                    object.__setattr__(self, f.name, tuple(float(v) for v in value))
                except (TypeError, ValueError):
                    raise ValueError(f"{name}.{f.name} must be a list of numbers, got {value!r}") from None


def changed_values(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the entries equal to ``defaults``; nested mappings are compared key
    by key, so a nested dict keeps only its changed keys (the reader must fill a nested
    mapping's missing keys with their defaults, as ``from_mapping`` of a nested parameter
    class does). Tuples become lists (YAML types) and keys are sorted, so reordering a
    config section changes nothing."""
    changed = {}
    for key, value in sorted(values.items()):
        default = defaults.get(key, _MISSING)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            nested = changed_values(value, default)
            if nested:
                changed[key] = nested
        elif _plain(value) != _plain(default):
            changed[key] = _plain(value)
    return changed


_MISSING = object()


def _plain(value: Any) -> Any:
    """Tuples as lists and mappings with sorted keys, recursively (a YAML list and a
    dataclass tuple compare equal; key order does not count)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in sorted(value.items())}
    return value
