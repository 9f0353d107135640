"""The distribution functions of models.distributions equal scipy.stats' to the last bit."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from intervention_meta.models import distributions as dist

X = np.array(
    [-np.inf, -50.0, -3.1, -1.0, -1e-8, 0.0, 1e-8, 0.3, 1.0, 1.96, 3.84, 12.5, 80.0, np.inf, np.nan]
)
Q = np.array([0.0, 1e-12, 0.001, 0.025, 0.05, 0.1, 0.5, 0.9, 0.975, 0.999, 1.0, -0.1, 1.1, np.nan])
DF = np.array([-1.0, 0.0, 0.4, 1.0, 2.0, 3.7, 10.0, 57.0, 1e6, np.inf, np.nan])

CASES = [
    ("norm_cdf", stats.norm.cdf, X, ()),
    ("norm_sf", stats.norm.sf, X, ()),
    ("norm_ppf", stats.norm.ppf, Q, ()),
    ("norm_isf", stats.norm.isf, Q, ()),
    ("t_cdf", stats.t.cdf, X, (DF,)),
    ("t_sf", stats.t.sf, X, (DF,)),
    ("t_ppf", stats.t.ppf, Q, (DF,)),
    ("t_isf", stats.t.isf, Q, (DF,)),
    ("chi2_cdf", stats.chi2.cdf, X, (DF,)),
    ("chi2_sf", stats.chi2.sf, X, (DF,)),
    ("chi2_ppf", stats.chi2.ppf, Q, (DF,)),
    ("chi2_isf", stats.chi2.isf, Q, (DF,)),
    ("f_sf", stats.f.sf, X, (DF, DF[::-1])),
    ("f_ppf", stats.f.ppf, Q, (DF, DF[::-1])),
]


@pytest.mark.parametrize(("name", "reference", "grid", "dfs"), CASES, ids=[c[0] for c in CASES])
def test_equals_scipy_stats_bitwise(name, reference, grid, dfs):
    ours = getattr(dist, name)
    if not dfs:
        np.testing.assert_array_equal(ours(grid), reference(grid))
        return
    # every argument with every degrees of freedom (pairs of dfs for F)
    x = np.repeat(grid, len(dfs[0]))
    args = [np.tile(d, len(grid)) for d in dfs]
    expected = reference(x, *args)
    got = ours(x, *args)
    np.testing.assert_array_equal(got, expected)
    # scalars in, a Python float out, the same value
    for i in range(0, len(x), 7):
        value = ours(float(x[i]), *(float(a[i]) for a in args))
        assert isinstance(value, float)
        np.testing.assert_array_equal(value, expected[i])


def test_no_scipy_stats_at_import():
    """Importing the analysis steps does not import scipy.stats (about 0.7 s per job)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import intervention_meta.analyses.overall, intervention_meta.analyses.moderators\n"
        "import intervention_meta.analyses.components, intervention_meta.analyses.bias\n"
        "import intervention_meta.analyses.sensitivity\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_workflow_parse_imports_no_pandas():
    """What the Snakefile and the rule files import when the workflow is parsed (the start-up
    check, the codebook, the per-domain levels, the figure lists, the multiverse's chunks, the
    vignette config's check) needs neither pandas nor scipy: every Snakemake start pays for those
    imports. The imports are read from the workflow's files, so a new one is checked too."""
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(
        r"^\s*((?:from intervention_meta\S* import .+)|(?:import intervention_meta\S*))$"
    )
    files = [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    imports = sorted(
        {
            m.group(1)
            for f in files
            for line in f.read_text().splitlines()
            if (m := pattern.match(line))
        }
    )
    assert any("multiverse" in line for line in imports)  # the files were read
    code = (
        "import sys\n"
        + "\n".join(imports)
        + "\nimport yaml\nfrom intervention_meta.config import check_config\n"
        "check_config(yaml.safe_load(open('config/config.yaml')), ['config/config.yaml'],"
        " schema='workflow/schemas/config.schema.yaml')\n"
        "print(sorted(m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
