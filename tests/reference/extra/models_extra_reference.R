# Extra metafor references for the model core (intervention_meta.models), beyond the shared set:
#   * every tau^2 estimator in a meta-regression with a factor and a numeric moderator (bcg_rr),
#   * models without intercept (per-category means; a numeric-only model, where rma() estimates
#     tau^2 and Q from the mean-centred yi),
#   * one-level test = "t", a fixed tau^2, predict(newmods = ...), confint at level 90,
#   * multilevel: a four-level model (an added grouping of studies), a non-zero fixed component,
#     no-intercept factor means, ML likelihood-ratio tests, a one-level rma.mv (~ 1 | id),
#     predict(newmods = ...) and level = 90.
# Usage (from the reference folder, tests/reference):  Rscript extra/models_extra_reference.R
# Reads ../bcg_rr.csv, ../assink2016.csv, ../konstantopoulos2011.csv (the shared reference data),
# writes extra/models_extra_reference.json. R 4.2.2, metafor 3.8-1.
# Each case's `call` is evaluated verbatim with `dat` = the CSV read by read.csv(); helpers
# (run_case, extractors) come from R/common.R.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

read_ref <- function(stem) read.csv(normalizePath(file.path(here, "..", paste0(stem, ".csv"))),
                                    stringsAsFactors = FALSE)
S <- new_store()

# ---- one-level models (bcg_rr) -------------------------------------------------------------
bcg <- read_ref("bcg_rr")
for (m in UNI_METHODS) {
  run_case(S, paste0("bcg_rr__metareg_alloc_ablat_", snake(m)),
           sprintf('rma(yi, vi, mods = ~ alloc + ablat, data=dat, method="%s")', m), ext_uni, bcg)
}
for (m in c("DL", "PM", "SJ", "ML")) {
  run_case(S, paste0("bcg_rr__metareg_alloc_ablat_", snake(m), "_knha"),
           sprintf('rma(yi, vi, mods = ~ alloc + ablat, data=dat, method="%s", test="knha")', m), ext_uni, bcg)
}
for (m in c("REML", "DL", "PM", "FE")) {
  run_case(S, paste0("bcg_rr__noint_alloc_", snake(m)),
           sprintf('rma(yi, vi, mods = ~ alloc - 1, data=dat, method="%s")', m), ext_uni, bcg)
}
for (m in c("REML", "ML", "DL", "HE", "SJ", "PM", "EB", "HS")) {
  run_case(S, paste0("bcg_rr__noint_ablat_", snake(m)),
           sprintf('rma(yi, vi, mods = ~ ablat - 1, data=dat, method="%s")', m), ext_uni, bcg)
}
run_case(S, "bcg_rr__uni_reml_t", 'rma(yi, vi, data=dat, method="REML", test="t")', ext_uni, bcg)
run_case(S, "bcg_rr__metareg_ablat_reml_t", 'rma(yi, vi, mods = ~ ablat, data=dat, method="REML", test="t")', ext_uni, bcg)
run_case(S, "bcg_rr__uni_tau2_fixed", 'rma(yi, vi, tau2=0.2, data=dat, method="REML")', ext_uni, bcg)
run_case(S, "bcg_rr__predict_newmods_reml",
         'res <- rma(yi, vi, mods = ~ alloc + ablat, data=dat, method="REML"); predict(res, newmods=rbind(c(1, 0, 20), c(0, 1, 40), c(0, 0, 55)))',
         ext_pred, bcg)
run_case(S, "bcg_rr__confint_reml_level90", 'res <- rma(yi, vi, data=dat, method="REML", level=90); confint(res)', ext_confint, bcg)
run_case(S, "bcg_rr__uni_reml_level90", 'rma(yi, vi, data=dat, method="REML", level=90)', ext_uni, bcg)

# ---- multilevel models (assink2016, konstantopoulos2011) ---------------------------------
ass <- read_ref("assink2016")
grp <- 'dat$grp <- (dat$study - 1) %/% 4; '
run_case(S, "assink2016__ml4_reml",
         paste0(grp, 'rma.mv(yi, vi, random = ~ 1 | grp/study/esid, data=dat, method="REML")'), ext_mv, ass)
run_case(S, "assink2016__ml4_ml_mods",
         paste0(grp, 'rma.mv(yi, vi, random = ~ 1 | grp/study/esid, data=dat, mods = ~ deltype + year, method="ML")'), ext_mv, ass)
run_case(S, "assink2016__ml3_sigma2_fixed",
         'rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, sigma2=c(0.1, NA), method="REML")', ext_mv, ass)
run_case(S, "assink2016__ml3_noint_deltype",
         'rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, mods = ~ deltype - 1, method="REML")', ext_mv, ass)
run_case(S, "assink2016__ml3_noint_deltype_t",
         'rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, mods = ~ deltype - 1, method="REML", test="t")', ext_mv, ass)
run_case(S, "assink2016__ml3_lrt_level3_ml",
         'full <- rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, method="ML"); reduced <- rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, sigma2=c(0, NA), method="ML"); list(full=full, reduced=reduced, anova=anova(full, reduced))',
         ext_lrt, ass)
run_case(S, "assink2016__ml1_id_reml",
         'rma.mv(yi, vi, random = ~ 1 | id, data=dat, method="REML")', ext_mv, ass)
run_case(S, "assink2016__ml3_predict_newmods",
         'res <- rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, mods = ~ deltype + year, method="REML"); predict(res, newmods=rbind(c(0, 0, 3), c(1, 0, 5), c(0, 1, -2)))',
         ext_pred, ass)
run_case(S, "assink2016__ml3_reml_level90",
         'rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, method="REML", level=90)', ext_mv, ass)
kon <- read_ref("konstantopoulos2011")
run_case(S, "konstantopoulos2011__ml3_lrt_level2_ml",
         'full <- rma.mv(yi, vi, random = ~ 1 | district/school, data=dat, method="ML"); reduced <- rma.mv(yi, vi, random = ~ 1 | district/school, data=dat, sigma2=c(NA, 0), method="ML"); list(full=full, reduced=reduced, anova=anova(full, reduced))',
         ext_lrt, kon)

out <- list(purpose = "extra metafor references for the model core (intervention_meta.models)",
            data = list(bcg_rr = "../bcg_rr.csv", assink2016 = "../assink2016.csv",
                        konstantopoulos2011 = "../konstantopoulos2011.csv"),
            case_naming = "<dataset>__<case>; `dat` in the call is <dataset>.csv as read by read.csv()",
            versions = versions(),
            cases = S$cases,
            failures = S$failures)
jsonlite::write_json(out, file.path(here, "models_extra_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("   %d cases, %d failures", length(S$cases), length(S$failures)))
