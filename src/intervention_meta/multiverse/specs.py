"""The specifications of a multiverse meta-analysis, enumerated from the config alone.

A specification is one defensible way to run the meta-analysis: a *which* choice per subset
factor (which effect sizes: ``all`` of them, one level of a codebook variable, or a set of levels)
and a *how* choice per model factor (structure, estimator, CHE correlation, outlier rule, bias
adjustment). The multiverse is their Cartesian product (Steegen et al. 2016; Voracek, Kossmeier &
Tran 2019) less the combinations that make no sense:

- built-in rules: the fixed-effect structure has no estimator (its one spec is ``FE``); only the
  CHE structure has a :math:`\\rho`; the multilevel structures (``three_level``, ``che``) take the
  likelihood estimators ``REML`` and ``ML`` only (DerSimonian-Laird and the other moment
  estimators are one-level); the selection model is a one-level random-effects model fitted by ML
  (its composite likelihood clusters the effect sizes by study), so ``bias: selection`` goes with
  ``structure: random`` and is fitted once, whatever the estimator list;
- the config's ``exclude`` list of partial specifications (every spec matching all the keys of an
  entry is left out).

Rules that depend on the data (too few effect sizes or studies in a subset) are applied when a
spec is fitted (:mod:`intervention_meta.multiverse.fit`): such a spec stays in the result table
with its reason. The enumeration reads the config only, so the number of specifications, and of
Snakemake jobs, is known when the workflow is built.

References
----------
Steegen, S., Tuerlinckx, F., Gelman, A., & Vanpaemel, W. (2016). Increasing transparency through a
multiverse analysis. *Perspectives on Psychological Science*, 11, 702-712.
Voracek, M., Kossmeier, M., & Tran, U. S. (2019). Which data to meta-analyze, and how? A
specification-curve and multiverse-analysis approach to meta-analysis. *Zeitschrift fuer
Psychologie*, 227, 64-82.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from intervention_meta.errors import Problem

#: the model structures of the ``how`` factor ``structure``
STRUCTURES = ("fixed", "random", "three_level", "che")
#: structures with random effects per level of ``models.levels`` (study, effect size)
MULTILEVEL = ("three_level", "che")
#: estimators of the multilevel structures
MULTILEVEL_METHODS = ("REML", "ML")
#: outlier rules: none, internally studentized residual (metafor ``rstandard``), studentized
#: deleted residual (metafor ``rstudent``: one refit per effect size, slow)
OUTLIER_RULES = ("none", "studentized", "deleted")
#: bias adjustments
BIAS = ("none", "pet_peese", "selection")
#: the ``how`` keys of a spec, in the order of the table
HOW_KEYS = ("structure", "method", "rho", "outliers", "bias")
#: the word for "every effect size" in a ``which`` factor
ALL = "all"

#: defaults of the config's ``multiverse`` section (as workflow/schemas/config.schema.yaml)
DEFAULTS: dict[str, Any] = {
    "which": {},
    "how": {
        "structure": ["random", "three_level"],
        "method": ["REML"],
        "rho": [0.6],
        "outliers": ["none"],
        "bias": ["none"],
    },
    "exclude": [],
    "outlier_threshold": 3.0,
    "min_k": 3,
    "min_studies_multilevel": 5,
    "min_k_pet_peese": 10,
    "min_k_selection": 20,
    "chunk_size": 100,
    "bootstrap": 20,
    "alpha": 0.05,
}


def _label(option: object) -> str:
    """A ``which`` option as text: ``all``, a code, or codes joined by ``+``."""
    if isinstance(option, list | tuple):
        return "+".join(str(o) for o in option)
    return str(option)


@dataclass(frozen=True)
class WhichOption:
    """One option of a ``which`` factor: the codes kept (empty: every effect size)."""

    variable: str
    label: str
    codes: tuple[str, ...]

    @classmethod
    def parse(cls, variable: str, option: object) -> WhichOption:
        if isinstance(option, list | tuple):
            codes = tuple(str(o) for o in option)
        elif str(option) == ALL:
            codes = ()
        else:
            codes = (str(option),)
        return cls(variable, _label(option), codes)


@dataclass(frozen=True)
class Spec:
    """One specification: its number, its ``which`` choices and its ``how`` choices.

    ``which`` maps each subset variable to the option's label (``all``, a code, ``1+2``);
    ``rho`` is None except for the CHE structure; ``method`` is ``FE`` for the fixed structure.
    """

    index: int
    which: tuple[WhichOption, ...]
    structure: str
    method: str
    rho: float | None
    outliers: str
    bias: str

    @property
    def id(self) -> str:
        return f"s{self.index + 1:05d}"

    @property
    def multilevel(self) -> bool:
        return self.structure in MULTILEVEL

    @property
    def subset_key(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """What identifies the spec's rows (specs with the same key fit the same data)."""
        return tuple((w.variable, w.codes) for w in self.which)

    def choices(self) -> dict[str, Any]:
        """Every choice by name: the ``which`` variables, then :data:`HOW_KEYS`."""
        out: dict[str, Any] = {w.variable: w.label for w in self.which}
        out.update({key: getattr(self, key) for key in HOW_KEYS})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "index": self.index, **self.choices()}


@dataclass(frozen=True)
class Multiverse:
    """The specifications of a config and what the rules left out.

    Attributes
    ----------
    specs : the specifications, numbered from 0 in enumeration order
    which : the subset factors: variable -> its options
    how : the model factors as configured (lists)
    excluded : rule -> how many specifications (which x how combinations) it left out
    settings : the section's other settings (thresholds, chunk size, bootstrap draws, alpha)
    """

    specs: tuple[Spec, ...]
    which: dict[str, tuple[WhichOption, ...]]
    how: dict[str, list]
    excluded: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def chunk_size(self) -> int:
        return int(self.settings["chunk_size"])

    @property
    def n_chunks(self) -> int:
        return max(1, math.ceil(len(self.specs) / self.chunk_size))

    def chunk(self, number: int) -> tuple[Spec, ...]:
        """The specs of chunk ``number`` (0-based)."""
        if not 0 <= number < self.n_chunks:
            raise ValueError(f"chunk {number} is not in 0..{self.n_chunks - 1}")
        size = self.chunk_size
        return self.specs[number * size : (number + 1) * size]

    def factors(self) -> dict[str, list[str]]:
        """Every factor that varies with its options as text, ``which`` first (for the panel)."""
        out = {var: [o.label for o in opts] for var, opts in self.which.items()}
        for key in HOW_KEYS:
            seen = list(dict.fromkeys(_text(s.choices()[key]) for s in self.specs))
            if len(seen) > 1:
                out[key] = seen
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_specs": len(self.specs),
            "n_chunks": self.n_chunks,
            "which": {var: [o.label for o in opts] for var, opts in self.which.items()},
            "how": self.how,
            "excluded": dict(self.excluded),
            "settings": dict(self.settings),
        }


def _text(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def settings_of(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``multiverse`` section with its defaults filled in (``how`` key by key)."""
    section = dict(section or {})
    section.pop("enabled", None)
    unknown = sorted(set(section) - set(DEFAULTS) - {"enabled"})
    if unknown:
        raise ValueError(f"multiverse: unknown key(s) {unknown}; the keys are {sorted(DEFAULTS)}")
    how = {**DEFAULTS["how"], **dict(section.get("how") or {})}
    out = {**DEFAULTS, **section, "how": how}
    for key, allowed in (("structure", STRUCTURES), ("outliers", OUTLIER_RULES), ("bias", BIAS)):
        bad = [v for v in how[key] if v not in allowed]
        if bad:
            raise ValueError(f"multiverse.how.{key}: {bad} not among {list(allowed)}")
    if int(out["chunk_size"]) < 1:
        raise ValueError(f"multiverse.chunk_size must be >= 1, got {out['chunk_size']!r}")
    return out


def _excluded_by(choices: Mapping[str, Any], exclude: Sequence[Mapping[str, Any]]) -> int | None:
    """The position of the first ``exclude`` entry all of whose keys match (None: none)."""
    for n, entry in enumerate(exclude):
        if all(_text(choices.get(k)) == _text(v) for k, v in entry.items()):
            return n
    return None


def _how_combinations(how: Mapping[str, Sequence[Any]], excluded: Counter) -> list[tuple]:
    """(structure, method, rho, outliers, bias) of every sensible ``how`` combination."""
    out: list[tuple] = []
    for structure, method, rho, outliers, bias in itertools.product(
        how["structure"], how["method"], how["rho"], how["outliers"], how["bias"]
    ):
        if structure == "fixed":
            method = "FE"
        if structure != "che":
            rho = None
        if bias == "selection":
            if structure != "random":
                excluded["selection model: one-level random-effects structure only"] += 1
                continue
            method = "ML"
        if structure in MULTILEVEL and method not in MULTILEVEL_METHODS:
            excluded[f"{method}: one-level estimator, not for {structure}"] += 1
            continue
        combination = (structure, method, None if rho is None else float(rho), outliers, bias)
        if combination in out:
            continue  # the same model reached through an option it does not use
        out.append(combination)
    return out


def enumerate_specs(section: Mapping[str, Any] | None) -> Multiverse:
    """Every specification of the config's ``multiverse`` section, in a fixed order.

    Parameters
    ----------
    section : the ``multiverse`` section: ``which`` (variable -> options, each ``all``, a code or
        a list of codes), ``how`` (``structure``, ``method``, ``rho``, ``outliers``, ``bias``:
        lists of options), ``exclude`` (partial specs to leave out) and the settings of
        :data:`DEFAULTS`

    Returns
    -------
    Multiverse
        The specs ordered by the ``which`` options (config order, the first variable slowest),
        then by the ``how`` combinations; what the rules left out counted in ``excluded``.

    Examples
    --------
    >>> mv = enumerate_specs({"which": {"design": ["all", "rct"]},
    ...                       "how": {"structure": ["fixed", "random"], "method": ["REML", "DL"]}})
    >>> len(mv), [s.method for s in mv.specs[:3]]
    (6, ['FE', 'REML', 'DL'])
    """
    settings = settings_of(section)
    which = {
        str(var): tuple(WhichOption.parse(str(var), o) for o in (opts or [ALL]))
        for var, opts in dict(settings["which"]).items()
    }
    rules: Counter = Counter()
    hows = _how_combinations(settings["how"], rules)
    n_subsets = math.prod(len(opts) for opts in which.values())
    excluded = Counter({rule: n * n_subsets for rule, n in rules.items()})
    exclude = list(settings["exclude"] or [])
    specs: list[Spec] = []
    for subset in itertools.product(*which.values()):
        for structure, method, rho, outliers, bias in hows:
            spec = Spec(len(specs), tuple(subset), structure, method, rho, outliers, bias)
            n = _excluded_by(spec.choices(), exclude)
            if n is not None:
                excluded[f"exclude[{n}]: {exclude[n]}"] += 1
                continue
            specs.append(spec)
    rest = {k: v for k, v in settings.items() if k not in ("which", "how", "exclude")}
    return Multiverse(
        tuple(specs),
        which,
        {k: list(v) for k, v in settings["how"].items()},
        dict(excluded),
        rest,
    )


def check_which(
    mv: Multiverse, columns: Sequence[str], codebook: Any, *, file: str
) -> list[Problem]:
    """Every ``which`` variable that is no column of the effect sizes (``file``), and every
    option code that is no level of its codebook variable, as problems (all at once)."""
    from intervention_meta.data.codebook import normalise_code

    problems = []
    for variable, options in mv.which.items():
        if variable not in columns:
            problems.append(
                Problem(
                    file,
                    None,
                    variable,
                    variable,
                    "a column of the effect sizes for multiverse.which (a codebook variable)",
                    check="multiverse_which",
                )
            )
            continue
        var = getattr(codebook, "variables", {}).get(variable)
        levels = dict(getattr(var, "levels", None) or {})
        if not levels:
            continue
        for option in options:
            for code in option.codes:
                if normalise_code(code) not in levels:
                    problems.append(
                        Problem(
                            "config: multiverse.which",
                            None,
                            variable,
                            code,
                            f"a level of {variable} ({', '.join(map(str, levels))}) or all",
                            check="multiverse_which",
                        )
                    )
    return problems


def chunk_numbers(config: Mapping[str, Any]) -> list[int]:
    """The chunk numbers of a pipeline config's multiverse (``[]`` unless its ``multiverse``
    section says ``enabled: true``): what the workflow expands its chunk jobs over."""
    section = dict(config.get("multiverse") or {})
    if not section.pop("enabled", False):
        return []
    return list(range(enumerate_specs(section).n_chunks))
