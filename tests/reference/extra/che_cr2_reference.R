# CHE working model (correlated + hierarchical effects) on assink2016: rma.mv fits with an
# imputed within-study sampling covariance, and clubSandwich CR2 / HTZ on top of them.
# Usage (from the reference folder, tests/reference):  Rscript extra/che_cr2_reference.R
# Reads ../assink2016.csv (the shared reference data), writes extra/che_cr2_reference.json.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; helpers (run_case, extractors) from R/common.R.
#
# V = impute_covariance_matrix(vi, cluster = study, r = rho): within a study the sampling
# covariance is rho * sqrt(vi_i * vi_j) off the diagonal and vi on it; the random part is
# ~ 1 | study/esid, so the marginal covariance of study j is
# V_j + sigma2[1] * J + sigma2[2] * I.
# clubSandwich is called without `cluster`: for rma.mv it then clusters by the outermost
# random-effect factor (study).

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

csv <- normalizePath(file.path(here, "..", "assink2016.csv"))
dat <- read.csv(csv, stringsAsFactors = FALSE)
S <- new_store()

fit_call <- function(r, mods = NULL) {
  m <- if (is.null(mods)) "" else sprintf(", mods = %s", mods)
  sprintf('V <- impute_covariance_matrix(dat$vi, cluster=dat$study, r=%s); res <- rma.mv(yi, V, random=~1|study/esid, data=dat%s, method="REML")', r, m)
}
cr2_tail <- '; list(coef_test=coef_test(res, vcov="CR2"), conf_int=conf_int(res, vcov="CR2"), vcov=vcovCR(res, type="CR2"))'

for (r in c("0.6", "0.2", "0.8")) {
  tag <- paste0("che_r", sub("0.", "0", r, fixed = TRUE))
  run_case(S, paste0(tag, "_reml"), paste0(fit_call(r), "; res"), ext_mv, dat)
  run_case(S, paste0(tag, "_reml_cr2"), paste0(fit_call(r), cr2_tail), ext_cr2, dat)
}

mods <- "~ deltype + year"
run_case(S, "che_r06_mods_deltype_year_reml", paste0(fit_call("0.6", mods), "; res"), ext_mv, dat)
run_case(S, "che_r06_mods_deltype_year_reml_cr2", paste0(fit_call("0.6", mods), cr2_tail), ext_cr2, dat)
run_case(S, "che_r06_mods_deltype_year_reml_wald_htz_deltype",
         paste0(fit_call("0.6", mods), '; Wald_test(res, constrain_zero(2:3), vcov="CR2", test="HTZ")'),
         ext_wald, dat)

out <- list(dataset = "assink2016",
            source = "metadat::dat.assink2016",
            measure = "SMD",
            csv = "../assink2016.csv",
            k = nrow(dat),
            data_call = "dat.assink2016",
            yi_vi = "as provided in metadat (standardized mean differences, yi/vi precomputed)",
            working_model = "CHE: V = impute_covariance_matrix(vi, cluster=study, r=rho) (rho*sqrt(vi_i vi_j) within study), random = ~ 1 | study/esid, REML",
            versions = versions(),
            cases = S$cases,
            failures = S$failures)
jsonlite::write_json(out, file.path(here, "che_cr2_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("   %d cases, %d failures", length(S$cases), length(S$failures)))
