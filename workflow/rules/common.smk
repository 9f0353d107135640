# Shared names for all rules. Every output of an analysis lives under results/<analysis>/.
ANALYSIS = config["analysis"]
RES = f"results/{ANALYSIS}"
ENV = "../../environment.yml"


def logfile(step):
    return f"{RES}/logs/{step}.log"


def all_outputs():
    return [
        f"{RES}/validation/passed.txt",
        f"{RES}/clean/effects.csv",
        f"{RES}/effect_sizes.csv",
        *coding_outputs(),
    ]
