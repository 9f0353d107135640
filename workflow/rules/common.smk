# Shared names for all rules. Every output of an analysis lives under results/<analysis>/.
ANALYSIS = config["analysis"]
RES = f"results/{ANALYSIS}"
ENV = "../../environment.yml"


def logfile(step):
    return f"{RES}/logs/{step}.log"


def flagfile(step):
    """One line per flag a step raises (small cells, non-convergence, dropped rows)."""
    return f"{RES}/flags/{step}.txt"


def all_outputs():
    return [
        f"{RES}/validation/passed.txt",
        f"{RES}/clean/effects.csv",
        f"{RES}/effect_sizes.csv",
        *overall_outputs(),
        *moderators_outputs(),
        *components_outputs(),
        *bias_outputs(),
        *sensitivity_outputs(),
        f"{RES}/warnings.txt",
        *coding_outputs(),
    ]
