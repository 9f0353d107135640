# Extra references for the overall analysis (src/intervention_meta/analyses/overall.py) on assink2016.
# Usage (from the reference folder, tests/reference):  Rscript extra/overall_assink2016.R
# Reads ../assink2016.csv (the shared reference data), writes extra/overall_assink2016.json.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; helpers (run_case, extractors) from R/common.R.
#
# Layout: {"versions": ..., "csv": ..., "cases": {...}, "failures": {...}}; every case stores the
# exact R call, evaluated verbatim with `dat` = read.csv("assink2016.csv").
#
# Cases (the pipeline's default model is three-level REML with test = "t"; the shared
# assink2016.json holds the test = "z" versions of the comparison fits and of predict()):
#   ml3_reml_t_predict        predict() of the three-level REML model with test="t" (t(k-p) critical
#                             values for the CI and the prediction interval)
#   uni_reml_t / uni_fe_t     one-level REML and FE comparison fits with test="t"
#   deltype_<level>_*         the overall model fitted separately per level of deltype (the
#                             per-domain analyses with domain_variable = deltype):
#       _ml3_reml_t           rma.mv(..., test="t") on the subset
#       _predict              its predict()
#       _i2                   its variance distribution (typical sampling variance, Cheung 2014)
#       _cr2                  clubSandwich CR2 coef_test / conf_int (not for covert: one study)
#       _lrt_level3_between / _lrt_level2_within   anova(full, reduced) with the level's sigma2 = 0
#   covert has one study: metafor fixes the between-study variance (a single-level factor) at 0
#   (warning stored) -- the behaviour the pipeline copies.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

csv <- normalizePath(file.path(here, "..", "assink2016.csv"))
dat <- read.csv(csv, stringsAsFactors = FALSE)
S <- new_store()

mv <- function(extra = "", data = "dat") {
  sprintf('rma.mv(yi, vi, random = ~ 1 | study/esid, data=%s, method="REML", test="t"%s)', data, extra)
}
i2code <- "W <- diag(1/res$vi, nrow=length(res$vi)); X <- model.matrix(res); P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W; typical_v <- (res$k - res$p) / sum(diag(P)); list(res=res, typical_v=typical_v, i2=100 * res$sigma2 / (sum(res$sigma2) + typical_v))"

run_case(S, "ml3_reml_t_predict", paste0("res <- ", mv(), "; predict(res)"), ext_pred, dat)
run_case(S, "uni_reml_t", 'rma(yi, vi, data=dat, method="REML", test="t")', ext_uni, dat)
run_case(S, "uni_fe_t", 'rma(yi, vi, data=dat, method="FE", test="t")', ext_uni, dat)

for (lev in c("general", "overt", "covert")) {
  sub <- sprintf('d <- dat[dat$deltype == "%s", ]; ', lev)
  tag <- paste0("deltype_", lev)
  run_case(S, paste0(tag, "_ml3_reml_t"), paste0(sub, mv(data = "d")), ext_mv, dat)
  run_case(S, paste0(tag, "_predict"), paste0(sub, "res <- ", mv(data = "d"), "; predict(res)"), ext_pred, dat)
  run_case(S, paste0(tag, "_i2"), paste0(sub, "res <- ", mv(data = "d"), "; ", i2code), ext_ml3_i2, dat)
  if (lev != "covert") {
    run_case(S, paste0(tag, "_cr2"),
             paste0(sub, "res <- ", mv(data = "d"),
                    '; list(coef_test=coef_test(res, vcov="CR2", cluster=d$study, test="Satterthwaite"), conf_int=conf_int(res, vcov="CR2", cluster=d$study), vcov=vcovCR(res, type="CR2", cluster=d$study))'),
             ext_cr2, dat)
    run_case(S, paste0(tag, "_lrt_level3_between"),
             paste0(sub, "full <- ", mv(data = "d"), "; reduced <- ", mv(", sigma2=c(0, NA)", data = "d"),
                    "; list(full=full, reduced=reduced, anova=anova(full, reduced))"), ext_lrt, dat)
  }
  run_case(S, paste0(tag, "_lrt_level2_within"),
           paste0(sub, "full <- ", mv(data = "d"), "; reduced <- ", mv(", sigma2=c(NA, 0)", data = "d"),
                  "; list(full=full, reduced=reduced, anova=anova(full, reduced))"), ext_lrt, dat)
}

out <- list(versions = versions(), csv = "../assink2016.csv", cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "overall_assink2016.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("%d cases, %d failures", length(S$cases), length(S$failures)))
