# Likelihood-ratio comparison of nested models (metafor 3.8 anova(full, reduced)) and fit
# statistics of several models (fitstats(...)):
#   * assink2016, three-level ML fits: ~ deltype vs intercept-only, ~ deltype + year vs ~ deltype,
#     and the pair given in the reverse order (anova puts the model with more parameters first);
#   * assink2016, REML fits with the same fixed effects: the full model vs sigma2 = c(NA, 0);
#   * assink2016, REML fits with different fixed effects: anova warns ("REML comparisons not
#     meaningful ...") and computes the LRT anyway (the warning is stored; we refuse such pairs);
#   * bcg_rr one-level ML fits: ~ ablat vs intercept-only (anova's pseudo-R2 and tau2 of both).
# Usage (from the reference folder, tests/reference):  Rscript extra/models_comparison_reference.R
# Reads ../assink2016.csv, ../bcg_rr.csv; writes extra/models_comparison_reference.json.
# R 4.2.2, metafor 3.8-1; helpers (run_case, fs_list) from R/common.R.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

read_ref <- function(stem) read.csv(normalizePath(file.path(here, "..", paste0(stem, ".csv"))),
                                    stringsAsFactors = FALSE)
S <- new_store()

ext_anova <- function(x, env = NULL) {
  a <- x$anova
  fs <- as.data.frame(x$fitstats)
  list(lrt = a$LRT, pval = a$pval, df = a$parms.f - a$parms.r,
       parms_full = a$parms.f, parms_reduced = a$parms.r,
       fit_stats_full = fs_list(a$fit.stats.f), fit_stats_reduced = fs_list(a$fit.stats.r),
       qe_full = a$QE.f, qe_reduced = a$QE.r,
       tau2_full = nz(a$tau2.f), tau2_reduced = nz(a$tau2.r), r2 = nz(a$R2),
       fitstats_models = arr(names(fs)),
       fitstats = lapply(fs, function(col) list(loglik = col[1], deviance = col[2], aic = col[3],
                                                bic = col[4], aicc = col[5])))
}

R_ASS <- "random = ~ 1 | study/esid, data=dat"
mv <- function(mods, method, extra = "") {
  m <- if (is.null(mods)) "" else sprintf("mods = %s, ", mods)
  sprintf('rma.mv(yi, vi, %s%s, method="%s"%s)', m, R_ASS, method, extra)
}
pair <- function(full, reduced, order = "full, reduced") {
  sprintf("full <- %s; reduced <- %s; list(anova = anova(%s), fitstats = fitstats(%s))",
          full, reduced, order, order)
}

ass <- read_ref("assink2016")
run_case(S, "assink2016__ml_deltype_vs_intercept",
         pair(mv("~ deltype", "ML"), mv(NULL, "ML")), ext_anova, ass)
run_case(S, "assink2016__ml_deltype_year_vs_deltype",
         pair(mv("~ deltype + year", "ML"), mv("~ deltype", "ML")), ext_anova, ass)
run_case(S, "assink2016__ml_deltype_vs_intercept_reversed",
         pair(mv("~ deltype", "ML"), mv(NULL, "ML"), "reduced, full"), ext_anova, ass)
run_case(S, "assink2016__reml_level2_zero",
         pair(mv("~ deltype", "REML"), mv("~ deltype", "REML", ", sigma2=c(NA, 0)")), ext_anova, ass)
run_case(S, "assink2016__reml_deltype_vs_intercept_warns",
         pair(mv("~ deltype", "REML"), mv(NULL, "REML")), ext_anova, ass)

bcg <- read_ref("bcg_rr")
run_case(S, "bcg_rr__ml_ablat_vs_intercept",
         pair('rma(yi, vi, mods = ~ ablat, data=dat, method="ML")', 'rma(yi, vi, data=dat, method="ML")'),
         ext_anova, bcg)

out <- list(what = "anova(full, reduced) likelihood-ratio tests and fitstats() of nested models",
            data = "case names are <dataset>__<case>; `dat` is ../<dataset>.csv read by read.csv()",
            versions = versions(), cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "models_comparison_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("   %d cases, %d failures", length(S$cases), length(S$failures)))
