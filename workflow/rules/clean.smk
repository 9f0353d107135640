rule clean:
    """Merge studies into effects, turn missing codes into missing values, apply the inclusion
    criteria; every dropped row is written to clean/dropped.csv with its reason."""
    input:
        passed=rules.validate.output.passed,
        codebook=config["codebook"],
        studies=config["data"]["studies"],
        effects=config["data"]["effects"],
    output:
        effects=f"{RES}/clean/effects.csv",
        dropped=f"{RES}/clean/dropped.csv",
        summary=f"{RES}/clean/summary.json",
    params:
        inclusion=config.get("inclusion", {}),
    log:
        logfile("clean"),
    conda:
        ENV
    script:
        "../scripts/clean.py"
