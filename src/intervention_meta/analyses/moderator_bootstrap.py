"""The cluster wild bootstrap p value beside the moderator tables' HTZ tests.

With few studies the HTZ Wald test of a moderator (Tipton & Pustejovsky 2015) can be
conservative for tests of several coefficients; the cluster wild bootstrap keeps its level there
(Joshi, Pustejovsky & Beretvas 2022). The moderator step adds its p value to every omnibus test
(each moderator alone, the multiple-moderator model) when the config says so
(``moderators.wild_bootstrap``):

``when``
    ``few_studies`` (default): only for tests on at most ``max_studies`` studies (default 40);
    ``always``; ``never``.
``replications``
    bootstrap replicates R (default 1999).
``adjust``
    the residual adjustment of the null model, ``CR2`` (default, the "CWB adjusted" test of
    Joshi et al.) or ``CR1``.
``statistic``
    ``F`` (default): the cluster-robust Wald statistic :math:`Q/q` with the CR1 sandwich,
    wildmeta's default statistic (its CR0 sandwich differs by a constant factor, which leaves the
    bootstrap p value unchanged); ``HTZ``: the test's own HTZ statistic (CR2 sandwich), about
    1.7 times slower because every replicate needs its CR2 adjustment matrices.

The weights are Rademacher, clustered by study, the full model refitted to every replicate with
its variance components re-estimated
(:func:`intervention_meta.methods.wild_bootstrap.wild_bootstrap_test`, which matches wildmeta).

Each test draws from its own generator, seeded from the config's ``seed`` and the test's key
(e.g. ``single/year``, ``multiple/all``) through :class:`numpy.random.SeedSequence`, so a p value
does not depend on which other tests run or in which order, and is the same byte for byte.

References
----------
Joshi, M., Pustejovsky, J. E., & Beretvas, S. N. (2022). Cluster wild bootstrapping to handle
dependent effect sizes in meta-analysis with a small number of studies. *Research Synthesis
Methods*, 13(4), 457-477.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from intervention_meta.io import jsonable
from intervention_meta.methods.influence import ModelCall
from intervention_meta.methods.wild_bootstrap import wild_bootstrap_test
from intervention_meta.models import ModelError

log = logging.getLogger(__name__)

__all__ = ["WHEN", "WildBootstrapOptions", "moderator_wild_bootstrap", "seed_sequence"]

#: the values of ``moderators.wild_bootstrap.when``
WHEN = ("few_studies", "always", "never")
ADJUST = ("CR2", "CR1")
#: ``moderators.wild_bootstrap.statistic`` -> the (sandwich, test) of wild_bootstrap_test
STATISTICS = {"F": ("CR1", "Naive-F"), "HTZ": ("CR2", "HTZ")}


def seed_sequence(seed: int | None, key: str) -> np.random.SeedSequence:
    """The seed sequence of the test ``key``: entropy ``[seed, crc32(key)]`` (``[crc32(key)]``
    without a seed), fixed whatever else runs."""
    crc = zlib.crc32(key.encode("utf-8"))
    return np.random.SeedSequence([crc] if seed is None else [int(seed), crc])


@dataclass(frozen=True)
class WildBootstrapOptions:
    """The config's ``moderators.wild_bootstrap`` section and the run's ``seed``."""

    when: str = "few_studies"
    max_studies: int = 40
    replications: int = 1999
    adjust: str = "CR2"
    statistic: str = "F"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.when not in WHEN:
            raise ValueError(
                f"moderators.wild_bootstrap.when must be one of {WHEN}, got {self.when!r}"
            )
        if self.adjust not in ADJUST:
            raise ValueError(
                f"moderators.wild_bootstrap.adjust must be one of {ADJUST}, got {self.adjust!r}"
            )
        if self.statistic not in STATISTICS:
            raise ValueError(
                "moderators.wild_bootstrap.statistic must be one of "
                f"{tuple(STATISTICS)}, got {self.statistic!r}"
            )
        if int(self.replications) < 1 or int(self.max_studies) < 1:
            raise ValueError("moderators.wild_bootstrap: replications and max_studies must be >= 1")

    @classmethod
    def from_config(
        cls, options: Mapping[str, Any] | None, seed: int | None = None
    ) -> WildBootstrapOptions:
        options = dict(options or {})
        keys = {"when", "max_studies", "replications", "adjust", "statistic"}
        unknown = sorted(set(options) - keys)
        if unknown:
            raise ValueError(f"moderators.wild_bootstrap: unknown keys {unknown}")
        return cls(
            when=str(options.get("when", cls.when)),
            max_studies=int(options.get("max_studies", cls.max_studies)),
            replications=int(options.get("replications", cls.replications)),
            adjust=str(options.get("adjust", cls.adjust)),
            statistic=str(options.get("statistic", cls.statistic)),
            seed=None if seed is None else int(seed),
        )

    def applies(self, n_studies: int) -> bool:
        """Whether a test on ``n_studies`` studies gets a bootstrap p value."""
        if self.when == "never":
            return False
        return self.when == "always" or n_studies <= self.max_studies

    def describe(self) -> str:
        """The method in words, for the notes of the tables and the JSON."""
        if self.when == "never":
            return "cluster wild bootstrap not computed (moderators.wild_bootstrap.when: never)"
        which = (
            "every test"
            if self.when == "always"
            else f"tests on at most {self.max_studies} studies"
        )
        return (
            f"wild bootstrap p = cluster wild bootstrap test (Joshi, Pustejovsky & Beretvas, "
            f"2022) for {which}: Rademacher weights per study, {self.adjust}-adjusted residuals "
            f"of the null model, {self.replications} replications, {self.statistic_text()}, "
            "variance components re-estimated in every replication; not adjusted for multiple "
            "testing"
        )

    def statistic_text(self) -> str:
        """The bootstrapped statistic in words."""
        if self.statistic == "HTZ":
            return "the HTZ statistic"
        return "the cluster-robust Wald statistic (CR1 sandwich)"

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


def moderator_wild_bootstrap(
    call: ModelCall,
    data: pd.DataFrame,
    constraints: Sequence[int],
    *,
    options: WildBootstrapOptions,
    key: str,
    cluster: str,
    n_studies: int,
) -> dict:
    """The wild bootstrap record of one omnibus test (``{}`` when ``when`` is ``never``).

    Parameters
    ----------
    call, data : the tested model and its rows (the moderator columns as the model takes them)
    constraints : the positions of the tested coefficients
    options : the section's settings and the seed
    key : the test's name, from which its generator is seeded (:func:`seed_sequence`)
    cluster : the clustering column (the study)
    n_studies : studies in the test (``few_studies`` compares it with ``max_studies``)

    Returns
    -------
    dict
        ``computed`` (bool), ``p`` (NaN when not computed), ``reason`` (why not), and when
        computed the test's record (:meth:`WildBootstrapTest.to_dict`: statistic, replications,
        n_valid, adjust, ...) and ``key``.
    """
    if options.when == "never":
        return {}
    if not options.applies(n_studies):
        return {
            "computed": False,
            "p": math.nan,
            "reason": f"{n_studies} studies, more than max_studies = {options.max_studies}",
        }
    rng = np.random.default_rng(seed_sequence(options.seed, key))
    try:
        test = wild_bootstrap_test(
            data,
            call,
            list(constraints),
            rng=rng,
            replications=options.replications,
            adjust=options.adjust,
            type=STATISTICS[options.statistic][0],
            test=STATISTICS[options.statistic][1],
            cluster=cluster,
        )
    except (ModelError, ValueError, np.linalg.LinAlgError) as err:
        log.warning("wild bootstrap of %s not computable: %s", key, err)
        return {"computed": False, "p": math.nan, "reason": f"not computable ({err})"}
    return {"computed": True, "p": test.p_value, "key": key, **test.to_dict()}
