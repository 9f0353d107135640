"""What fitting a multiverse's specifications gives: a spec's numbers and a chunk's results.

:mod:`.fit` makes them (with the model engine); the gather step reads them back from the chunk
files (:meth:`ChunkResult.from_dict`) without importing the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the numbers of a fitted spec (None when it was not fitted)
NUMBERS = ("estimate", "se", "df", "pval", "ci_lb", "ci_ub")


@dataclass(frozen=True)
class SpecFit:
    """One spec's result: ``status`` ``ok``, ``too_small`` or ``failed`` (with ``reason``)."""

    status: str
    reason: str = ""
    k: int = 0
    n_studies: int = 0
    n_outliers: int = 0
    estimate: float | None = None
    se: float | None = None
    df: float | None = None
    pval: float | None = None
    ci_lb: float | None = None
    ci_ub: float | None = None
    tau2: dict[str, float] = field(default_factory=dict)
    converged: bool | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "k": self.k,
            "n_studies": self.n_studies,
            "n_outliers": self.n_outliers,
            **{key: getattr(self, key) for key in NUMBERS},
            "tau2": dict(self.tau2),
            "converged": self.converged,
        }


def fitted_spec(
    k: int,
    n_studies: int,
    n_out: int,
    numbers: Mapping[str, Any],
    tau2: Mapping[str, float],
    converged: bool,
) -> SpecFit:
    """A fitted spec: ``numbers`` holds :data:`NUMBERS` (a missing one is None)."""
    values = {key: None if numbers.get(key) is None else float(numbers[key]) for key in NUMBERS}
    return SpecFit(
        "ok",
        k=k,
        n_studies=n_studies,
        n_outliers=n_out,
        **values,
        tau2=dict(tau2),
        converged=bool(converged),
    )


@dataclass(frozen=True)
class ChunkResult:
    """The specs of one chunk fitted on the data and on every bootstrap draw under the null.

    ``boot_estimate`` and ``boot_pval`` are ``(draws, specs)``; NaN where a spec was not fitted
    in a draw (or not on the data).
    """

    chunk: int
    spec_ids: tuple[str, ...]
    fits: tuple[SpecFit, ...]
    boot_estimate: np.ndarray
    boot_pval: np.ndarray
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk,
            "seed": self.seed,
            "specs": [
                {"id": sid, **f.to_dict()} for sid, f in zip(self.spec_ids, self.fits, strict=True)
            ],
            "bootstrap": {
                "draws": int(self.boot_estimate.shape[0]),
                "estimate": self.boot_estimate.tolist(),
                "pval": self.boot_pval.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ChunkResult:
        """The chunk back from :meth:`to_dict` (JSON ``null`` numbers become NaN)."""
        fits, ids = [], []
        for row in record["specs"]:
            row = dict(row)
            ids.append(str(row.pop("id")))
            fits.append(SpecFit(**row))
        boot = record["bootstrap"]
        shape = (int(boot["draws"]), len(ids))

        def array(values: list) -> np.ndarray:
            out = np.array(values, dtype=float) if values else np.empty(shape)
            return out.reshape(shape)

        return cls(
            int(record["chunk"]),
            tuple(ids),
            tuple(fits),
            array(boot["estimate"]),
            array(boot["pval"]),
            int(record["seed"]),
        )


def configured_level(models: Mapping[str, Any] | None) -> float:
    """The confidence level of the config's ``models`` section (default 0.95)."""
    return float(dict(models or {}).get("level", 0.95))


__all__ = ["NUMBERS", "ChunkResult", "SpecFit", "configured_level", "fitted_spec"]
