"""Base class of the frozen parameter dataclasses that config sections fill.

Every stage's parameters are a ``@dataclass(frozen=True)`` subclass of :class:`Params`
with a commented default per field. The config section is turned into it with
:meth:`Params.from_mapping` (unknown keys are errors naming them); ``__post_init__``
calls :meth:`Params._coerce_field_types` and then checks ranges.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any, Mapping

import numpy as np


class Params:
    """Mixin for frozen parameter dataclasses read from a config section."""

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
