# Extra clubSandwich 0.5.8 references for robust.py beyond the shared CR2 cases:
#  * CR0 / CR1 / CR1p / CR1S sandwiches with Satterthwaite df (assink2016, ~ deltype + year)
#  * CR2 with a user target (target = dat$vi, i.e. diag(vi), instead of the model's V),
#    and the HTZ Wald test on it
#  * HTZ with a general contrast matrix (constrain_equal), with q = 1 (konstantopoulos2011),
#    and on a CR1 sandwich
#  * clusters of one row each (bcg_rr, rma.mv with random = ~ 1 | trial)
# Usage (from the reference folder, tests/reference):  Rscript extra/robust_extra_reference.R
# Reads the shared CSVs in tests/reference, writes extra/robust_extra_reference.json.
# Each case has `dataset` (the CSV stem in tests/reference) beside its `call`; `dat` is that CSV.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; helpers (run_case, extractors) from R/common.R.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

read_ref <- function(stem) read.csv(normalizePath(file.path(here, "..", paste0(stem, ".csv"))),
                                    stringsAsFactors = FALSE)
S <- new_store()
case <- function(stem, name, call, extractor) {
  run_case(S, name, call, extractor, read_ref(stem))
  if (!is.null(S$cases[[name]])) S$cases[[name]]$dataset <- stem
}

ext_ct_vcov <- function(x, env = NULL) list(coef_test = ext_df_generic(x$coef_test),
                                            vcov = mat_rows(x$vcov))
ext_wald_c <- function(x, env = NULL) c(ext_wald(x$wald), list(constraints = mat_rows(x$constraints)))
ext_target <- function(x, env = NULL) list(coef_test = ext_df_generic(x$coef_test),
                                           conf_int = ext_df_generic(x$conf_int),
                                           vcov = mat_rows(x$vcov),
                                           wald_htz_deltype = ext_wald(x$wald))

# --- assink2016, three-level model with moderators (fit = shared case ml3_mods_deltype_year_reml)
fit_a <- 'res <- rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, mods = ~ deltype + year, method="REML")'
for (type in c("CR0", "CR1", "CR1p", "CR1S")) {
  case("assink2016", paste0("ml3_mods_deltype_year_reml_", snake(type)),
       sprintf('%s; V <- vcovCR(res, type="%s", cluster=dat$study); list(coef_test=coef_test(res, vcov=V, test="Satterthwaite"), vcov=V)',
               fit_a, type), ext_ct_vcov)
}
case("assink2016", "ml3_mods_deltype_year_reml_cr1_wald_htz_all",
     sprintf('%s; C <- constrain_zero(2:4, coefs=coef(res)); list(wald=Wald_test(res, constraints=C, vcov="CR1", cluster=dat$study, test="HTZ"), constraints=C)', fit_a),
     ext_wald_c)
case("assink2016", "ml3_mods_deltype_year_reml_cr2_target_vi",
     sprintf('%s; V <- vcovCR(res, type="CR2", cluster=dat$study, target=dat$vi); list(coef_test=coef_test(res, vcov=V, test="Satterthwaite"), conf_int=conf_int(res, vcov=V), vcov=V, wald=Wald_test(res, constraints=constrain_zero(2:3), vcov=V, test="HTZ"))', fit_a),
     ext_target)
case("assink2016", "ml3_mods_deltype_year_reml_wald_htz_equal",
     sprintf('%s; C <- constrain_equal(2:3, coefs=coef(res)); list(wald=Wald_test(res, constraints=C, vcov="CR2", cluster=dat$study, test="HTZ"), constraints=C)', fit_a),
     ext_wald_c)

# --- konstantopoulos2011, q = 1 (fit = shared case ml3_mods_year_reml)
case("konstantopoulos2011", "ml3_mods_year_reml_wald_htz_year",
     'res <- rma.mv(yi, vi, random = ~ 1 | district/school, data=dat, mods = ~ year, method="REML"); C <- constrain_zero(2, coefs=coef(res)); list(wald=Wald_test(res, constraints=C, vcov="CR2", cluster=dat$district, test="HTZ"), constraints=C)',
     ext_wald_c)

# --- bcg_rr, one row per cluster
fit_b <- 'res <- rma.mv(yi, vi, random = ~ 1 | trial, data=dat, mods = ~ ablat, method="REML")'
case("bcg_rr", "mv_trial_ablat_reml", paste0(fit_b, "; res"), ext_mv)
case("bcg_rr", "mv_trial_ablat_reml_cr2",
     sprintf('%s; list(coef_test=coef_test(res, vcov="CR2", cluster=dat$trial, test="Satterthwaite"), conf_int=conf_int(res, vcov="CR2", cluster=dat$trial), vcov=vcovCR(res, type="CR2", cluster=dat$trial))', fit_b),
     ext_cr2)
case("bcg_rr", "mv_trial_ablat_reml_wald_htz_ablat",
     sprintf('%s; C <- constrain_zero(2, coefs=coef(res)); list(wald=Wald_test(res, constraints=C, vcov="CR2", cluster=dat$trial, test="HTZ"), constraints=C)', fit_b),
     ext_wald_c)
case("bcg_rr", "mv_trial_ablat_reml_cr0",
     sprintf('%s; V <- vcovCR(res, type="CR0", cluster=dat$trial); list(coef_test=coef_test(res, vcov=V, test="Satterthwaite"), vcov=V)', fit_b),
     ext_ct_vcov)

out <- list(datasets = list(assink2016 = "../assink2016.csv",
                            konstantopoulos2011 = "../konstantopoulos2011.csv",
                            bcg_rr = "../bcg_rr.csv"),
            note = "each case names its `dataset`; fits reuse the shared cases ml3_mods_deltype_year_reml (assink2016) and ml3_mods_year_reml (konstantopoulos2011); the bcg_rr fit is stored here (mv_trial_ablat_reml)",
            versions = versions(),
            cases = S$cases,
            failures = S$failures)
jsonlite::write_json(out, file.path(here, "robust_extra_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("   %d cases, %d failures", length(S$cases), length(S$failures)))
