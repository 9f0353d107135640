"""A simulated second coder: coder A's rows for a subset of units, with known disagreements.

The shipped ``data/raw/coder2_studies.csv`` is made by :func:`simulate_second_coder` from the
committed ``data/raw/studies.csv`` (coder A). It exists to exercise and demonstrate the
inter-rater reliability step (:mod:`intervention_meta.coding.reliability`), so its disagreements are
*deliberate and known*: the file is a copy of coder A's cells for ``n_units`` randomly drawn units
(all columns, cells exactly as written), in which a planned number of cells per variable type was
changed to another valid code:

* binary: the other code;
* ordinal: a neighbouring level (one step up or down);
* categorical: another level, drawn at random.

Only cells where coder A wrote a valid code (not a missing code, not blank) are changed, each
cell at most once, spread over the variables of a type (each variable once before any twice).
Variables with the role ``moderator`` are preferred where a type has any. Every change is
recorded in :attr:`SecondCoder.disagreements` and written to a YAML file beside the data
(``coder2_truth.yaml``), so a test can check that the reliability step finds exactly these.

Command line (how the shipped files were made)::

    python -m intervention_meta second-coder --codebook data/codebook.yaml \\
        --studies-a data/raw/studies.csv --studies-b data/raw/coder2_studies.csv \\
        --truth data/raw/coder2_truth.yaml --seed 20261125
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from intervention_meta.data.codebook import Codebook, Variable, load_codebook
from intervention_meta.data.reading import read_table

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PLAN",
    "Disagreement",
    "SecondCoder",
    "simulate_second_coder",
    "write_second_coder",
]

DEFAULT_SEED = 20261125
DEFAULT_UNITS = 10
DEFAULT_PLAN: Mapping[str, int] = {"binary": 5, "ordinal": 2, "categorical": 2}


@dataclass(frozen=True)
class Disagreement:
    """One deliberate disagreement: coder B wrote ``coder_b`` where coder A wrote ``coder_a``."""

    table: str
    unit: str
    variable: str
    coder_a: str
    coder_b: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SecondCoder:
    """The simulated second coder's table and the disagreements built into it.

    Attributes
    ----------
    table, key : the table (e.g. studies) and its key column.
    frame : coder B's cells as text, coder A's columns in coder A's order.
    units : the keys of the units coder B coded, in coder A's order.
    disagreements : the changed cells, in unit and column order.
    seed : the seed the generator was made from (None if not known).
    """

    table: str
    key: str
    frame: pd.DataFrame
    units: tuple[str, ...]
    disagreements: tuple[Disagreement, ...]
    seed: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """The disagreements, one row each."""
        cols = ["table", "unit", "variable", "coder_a", "coder_b"]
        return pd.DataFrame([d.to_dict() for d in self.disagreements], columns=cols)

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "key": self.key,
            "seed": self.seed,
            "n_units": len(self.units),
            "units": list(self.units),
            "n_disagreements": len(self.disagreements),
            "disagreements": [d.to_dict() for d in self.disagreements],
        }

    def write(self, data_path: str | Path, truth_path: str | Path, source: str | Path = "") -> None:
        """Write coder B's table (CSV, UTF-8, comma) and the truth (YAML with a header note)."""
        data_path, truth_path = Path(data_path), Path(truth_path)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        with open(data_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(list(self.frame.columns))
            writer.writerows(self.frame.astype(str).to_numpy().tolist())
        truth: dict = {"simulated": True, "data": str(data_path)}
        if source:
            truth["coder_a"] = str(source)
            truth["coder_a_sha256"] = hashlib.sha256(Path(source).read_bytes()).hexdigest()
        truth.update(self.to_dict())
        header = _HEADER.format(n=len(self.disagreements), units=len(self.units))
        with open(truth_path, "w", encoding="utf-8") as fh:
            fh.write(header)
            yaml.safe_dump(truth, fh, sort_keys=False, allow_unicode=True)
        logger.info(
            "wrote a simulated second coder (%d units, %d disagreements) to %s and %s",
            len(self.units),
            len(self.disagreements),
            data_path,
            truth_path,
        )


_HEADER = """\
# SIMULATED SECOND CODER -- NOT A REAL CODER.
# The file named under `data` holds coder A's cells (coder_a, the main data file) for {units}
# randomly drawn units, copied exactly, except for {n} deliberate disagreements listed below
# (unit, variable, coder A's cell, coder B's cell). It exercises the inter-rater reliability step
# (intervention_meta.coding.reliability; rule `reliability` when the config names the file under
# reliability: studies). Made by intervention_meta.coding.second_coder (seeded); regenerate with
#   python -m intervention_meta second-coder --codebook data/codebook.yaml \\
#       --studies-a data/raw/studies.csv --studies-b data/raw/coder2_studies.csv \\
#       --truth data/raw/coder2_truth.yaml --seed <seed below>
# whenever coder A's file changes (coder_a_sha256 records the version it was made from).
"""


def _other_code(var: Variable, code: str, rng: np.random.Generator) -> str:
    codes = list(var.levels)
    i = codes.index(code)
    if var.type == "ordinal":
        steps = [j for j in (i - 1, i + 1) if 0 <= j < len(codes)]
        return codes[steps[int(rng.integers(len(steps)))]]
    others = [c for c in codes if c != code]
    return others[int(rng.integers(len(others)))]


def simulate_second_coder(
    codebook: Codebook,
    frame: pd.DataFrame,
    rng: np.random.Generator,
    n_units: int = DEFAULT_UNITS,
    plan: Mapping[str, int] | None = None,
    table: str | None = None,
    seed: int | None = None,
) -> SecondCoder:
    """Draw a second coder from coder A's table (see the module doc).

    Parameters
    ----------
    codebook : the coding scheme.
    frame : coder A's table as text (e.g. from :func:`~intervention_meta.data.reading.read_table`).
    rng : the random generator (units, cells and new codes are drawn from it, in that order).
    n_units : how many units coder B codes (all if larger than the table).
    plan : variable type -> number of deliberate disagreements (binary, categorical, ordinal);
        default :data:`DEFAULT_PLAN` (5 binary, 2 ordinal, 2 categorical).
    table : the table (default: the codebook's parent table).
    seed : recorded in the result (the seed ``rng`` was made from).

    Returns
    -------
    SecondCoder

    Raises
    ------
    ValueError
        If the plan names another type, or there are not enough cells with a valid code of a
        type to change.
    """
    plan = dict(DEFAULT_PLAN if plan is None else plan)
    table = table or codebook.parent_table
    key = codebook.key(table)
    for vtype in plan:
        if vtype not in ("binary", "categorical", "ordinal"):
            raise ValueError(f"plan: only binary, categorical and ordinal, got {vtype!r}")
    n_units = min(n_units, len(frame))
    picked = np.sort(rng.choice(len(frame), size=n_units, replace=False))
    b = frame.iloc[picked].copy()
    units = tuple(str(k) for k in b[key])
    changed: dict[tuple[str, str], Disagreement] = {}
    for vtype, count in plan.items():
        pool = [
            v
            for v in codebook.variables_of(table)
            if v.type == vtype and v.name in b.columns and v.name != key
        ]
        preferred = [v for v in pool if "moderator" in v.roles]
        pool = preferred or pool
        order = [pool[i] for i in rng.permutation(len(pool))]
        done = j = 0
        while done < count:
            if not order:
                raise ValueError(
                    f"only {done} of {count} {vtype} cells with a valid code could be changed"
                )
            var = order[j % len(order)]
            rows = [
                i
                for i, (unit, raw) in enumerate(zip(b[key], b[var.name], strict=True))
                if (str(unit), var.name) not in changed and var.parse(raw).state == "value"
            ]
            if not rows:  # every valid cell of this variable is used up
                order.remove(var)
                continue
            i = rows[int(rng.integers(len(rows)))]
            raw = b.iloc[i][var.name]
            new = _other_code(var, var.parse(raw).value, rng)
            unit = str(b.iloc[i][key])
            b.iloc[i, b.columns.get_loc(var.name)] = new
            changed[(unit, var.name)] = Disagreement(table, unit, var.name, raw, new)
            done += 1
            j += 1
    columns = {c: j for j, c in enumerate(b.columns)}
    position = {u: j for j, u in enumerate(units)}
    disagreements = sorted(changed.values(), key=lambda d: (position[d.unit], columns[d.variable]))
    return SecondCoder(
        table=table,
        key=key,
        frame=b.reset_index(drop=True),
        units=units,
        disagreements=tuple(disagreements),
        seed=seed,
    )


def write_second_coder(
    *,
    codebook: str | Path,
    studies_a: str | Path,
    studies_b: str | Path,
    truth: str | Path,
    seed: int = DEFAULT_SEED,
    units: int = DEFAULT_UNITS,
    plan: Mapping[str, int] | None = None,
    table: str | None = None,
) -> SecondCoder:
    """Simulate a second coder of ``studies_a`` (coder A's table; ``table`` defaults to the
    codebook's parent table) with ``plan`` disagreements per variable type (default
    :data:`DEFAULT_PLAN`); write coder B's table to ``studies_b`` and the disagreements to
    ``truth``."""
    cb = load_codebook(codebook)
    table = table or cb.parent_table
    frame, _ = read_table(studies_a, table=table)
    coder2 = simulate_second_coder(
        cb,
        frame,
        np.random.default_rng(seed),
        n_units=units,
        plan=dict(DEFAULT_PLAN if plan is None else plan),
        table=table,
        seed=seed,
    )
    coder2.write(studies_b, truth, source=studies_a)
    return coder2
