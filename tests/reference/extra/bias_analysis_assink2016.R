# Extra references for the publication-bias step (src/intervention_meta/analyses/bias.py) on
# assink2016: the univariate methods on the study-averaged effects, as the pipeline runs them with
# its defaults (bias.aggregate_rho = 0.6, univariate_method = REML, trimfill_estimator = L0,
# fsn_target = null), and the CR2-robust version of the three-level Egger-type test.
# Usage (from the reference folder, tests/reference):  Rscript extra/bias_analysis_assink2016.R
# Reads ../assink2016.csv, writes extra/bias_analysis_assink2016.json.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; helpers (run_case, extractors) from R/common.R.
#
# Layout: {"versions": ..., "csv": ..., "cases": {...}, "failures": {...}}; every case stores the
# exact R call, evaluated verbatim with `dat` = read.csv("assink2016.csv").
#
# Cases (`agg` = the effects averaged per study, aggregate.escalc with struct="CS", rho = 0.6):
#   agg_uni_reml             rma(yi, vi, data=agg, method="REML") -- the unadjusted estimate
#   agg_regtest_lm_sei       classical Egger test, regtest(model="lm", predictor="sei")
#   agg_regtest_rma_sei_reml Egger-type meta-regression test, regtest(model="rma") on the REML fit
#   agg_ranktest             Begg & Mazumdar rank correlation, ranktest() (exact p: no ties)
#   agg_trimfill_reml_l0     trimfill() of the REML fit, estimator L0
#   agg_pet_lm / agg_peese_lm  lm(yi ~ sqrt(vi) / ~ vi, weights = 1/vi, data=agg)
#   agg_fsn_rosenthal / agg_fsn_orwin  fsn(yi, vi, data=agg, type=...)
#   ml3_egger_sei_reml_t_cr2 rma.mv(yi, vi, mods = ~ sqrt(vi), random = ~ 1 | study/esid, test="t")
#                            with clubSandwich CR2 coef_test / conf_int clustered by study

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

ext_lm <- function(fit, env = NULL) {
  s <- summary(fit)
  cf <- coef(s)
  ci <- confint(fit, level = 0.95)
  tv <- cf[, 3]
  dfr <- fit$df.residual
  list(coef_names = arr(rownames(cf)), b = arr(cf[, 1]), se = arr(cf[, 2]), tval = arr(tv),
       pval = arr(cf[, 4]), ci_lb = arr(ci[, 1]), ci_ub = arr(ci[, 2]), df = dfr,
       pval_greater = arr(pt(tv, dfr, lower.tail = FALSE)),
       pval_less = arr(pt(tv, dfr, lower.tail = TRUE)),
       sigma = s$sigma)
}

csv <- normalizePath(file.path(here, "..", "assink2016.csv"))
dat <- read.csv(csv, stringsAsFactors = FALSE)
S <- new_store()

agg <- 'e <- escalc(measure="GEN", yi=yi, vi=vi, data=dat); agg <- aggregate(e, cluster=study, rho=0.6); '
run_case(S, "agg_uni_reml", paste0(agg, 'rma(yi, vi, data=agg, method="REML")'), ext_uni, dat)
run_case(S, "agg_regtest_lm_sei",
         paste0(agg, 'res <- rma(yi, vi, data=agg, method="FE"); regtest(res, model="lm", predictor="sei")'),
         ext_regtest, dat)
run_case(S, "agg_regtest_rma_sei_reml",
         paste0(agg, 'res <- rma(yi, vi, data=agg, method="REML"); regtest(res, model="rma", predictor="sei")'),
         ext_regtest, dat)
run_case(S, "agg_ranktest", paste0(agg, 'res <- rma(yi, vi, data=agg, method="REML"); ranktest(res)'),
         ext_ranktest, dat)
run_case(S, "agg_trimfill_reml_l0",
         paste0(agg, 'res <- rma(yi, vi, data=agg, method="REML"); trimfill(res, estimator="L0")'),
         ext_trimfill, dat)
run_case(S, "agg_pet_lm", paste0(agg, 'lm(yi ~ sqrt(vi), weights = 1/vi, data=agg)'), ext_lm, dat)
run_case(S, "agg_peese_lm", paste0(agg, 'lm(yi ~ vi, weights = 1/vi, data=agg)'), ext_lm, dat)
run_case(S, "agg_fsn_rosenthal", paste0(agg, 'fsn(yi, vi, data=agg, type="Rosenthal")'), ext_fsn, dat)
run_case(S, "agg_fsn_orwin", paste0(agg, 'fsn(yi, vi, data=agg, type="Orwin")'), ext_fsn, dat)
run_case(S, "ml3_egger_sei_reml_t_cr2",
         'res <- rma.mv(yi, vi, mods = ~ sqrt(vi), random = ~ 1 | study/esid, data=dat, test="t"); list(coef_test=coef_test(res, vcov="CR2", cluster=dat$study, test="Satterthwaite"), conf_int=conf_int(res, vcov="CR2", cluster=dat$study), vcov=vcovCR(res, type="CR2", cluster=dat$study))',
         ext_cr2, dat)

out <- list(versions = versions(), csv = "../assink2016.csv", cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "bias_analysis_assink2016.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("%d cases, %d failures", length(S$cases), length(S$failures)))
