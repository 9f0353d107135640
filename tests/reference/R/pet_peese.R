# PET and PEESE meta-regressions in the working model (three-level and CHE), with clubSandwich
# CR2 t tests (Satterthwaite df) of the intercept and the slope.
# Usage (from the reference folder, tests/reference):  Rscript R/pet_peese.R
# Reads assink2016.csv and konstantopoulos2011.csv (the shared reference data), writes
# kalaian1996.csv (metadat::dat.kalaian1996, SAT coaching: SMDs with the group sizes n1i, n2i,
# one or two outcomes per study) and pet_peese.json.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; helpers (run_case, extractors) from R/common.R.
#
# PET: yi ~ sqrt(vi); PEESE: yi ~ vi (Stanley & Doucouliagos 2014), in the model
# rma.mv(yi, vi, random = ~ 1 | study/es); the modified predictors of Pustejovsky & Rodgers
# (2019) for SMDs, sqrt(1/n1i + 1/n2i) and 1/n1i + 1/n2i, where the group sizes are known
# (kalaian1996). The CHE cases use V = impute_covariance_matrix(vi, cluster = study, r = 0.6).
# coef_test / conf_int are called without `cluster`: for rma.mv clubSandwich then clusters by the
# outermost random-effect factor.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))
library(metadat)

ref <- normalizePath(file.path(here, ".."))
kal_csv <- file.path(ref, "kalaian1996.csv")
write.csv(dat.kalaian1996[, c("id", "study", "year", "n1i", "n2i", "outcome", "yi", "vi")],
          kal_csv, row.names = FALSE)

ext_bias <- function(x, env = NULL) {
  out <- ext_mv(x$res)
  out$cr2 <- ext_cr2(x)
  out
}
cr2_tail <- '; list(res=res, coef_test=coef_test(res, vcov="CR2", test="Satterthwaite"), conf_int=conf_int(res, vcov="CR2"), vcov=vcovCR(res, type="CR2"))'

sets <- list(
  assink2016 = list(csv = "assink2016.csv", random = "~ 1 | study/esid", cluster = "study",
                    che = TRUE, modified = FALSE),
  konstantopoulos2011 = list(csv = "konstantopoulos2011.csv", random = "~ 1 | district/school",
                             cluster = "district", che = FALSE, modified = FALSE),
  kalaian1996 = list(csv = "kalaian1996.csv", random = "~ 1 | study/id", cluster = "study",
                     che = TRUE, modified = TRUE)
)
predictors <- list(pet_se = "sqrt(vi)", peese_var = "vi",
                   pet_modified = "sqrt(1/n1i + 1/n2i)", peese_modified = "I(1/n1i + 1/n2i)")

out_sets <- list()
for (name in names(sets)) {
  s <- sets[[name]]
  dat <- read.csv(file.path(ref, s$csv), stringsAsFactors = FALSE)
  S <- new_store()
  preds <- if (s$modified) predictors else predictors[c("pet_se", "peese_var")]
  for (tag in names(preds)) {
    mods <- sprintf("~ %s", preds[[tag]])
    # nlminb stops without convergence where both components are ~0 (PEESE, modified predictor)
    ctl <- if (tag == "peese_modified") ', control=list(optimizer="bobyqa")' else ""
    ml3 <- sprintf('res <- rma.mv(yi, vi, mods = %s, random = %s, data=dat, method="REML"%s)',
                   mods, s$random, ctl)
    run_case(S, paste0(tag, "_ml3"), paste0(ml3, cr2_tail), ext_bias, dat)
    if (s$che) {
      che <- sprintf('V <- impute_covariance_matrix(dat$vi, cluster=dat$%s, r=0.6); res <- rma.mv(yi, V, mods = %s, random = %s, data=dat, method="REML"%s)',
                     s$cluster, mods, s$random, ctl)
      run_case(S, paste0(tag, "_che06"), paste0(che, cr2_tail), ext_bias, dat)
    }
  }
  run_case(S, "overall_ml3",
           sprintf('rma.mv(yi, vi, random = %s, data=dat, method="REML")', s$random), ext_mv, dat)
  out_sets[[name]] <- list(csv = s$csv, random = s$random, cluster = s$cluster,
                           cases = S$cases, failures = S$failures)
  message(sprintf("%s: %d cases, %d failures", name, length(S$cases), length(S$failures)))
}

out <- list(what = "PET / PEESE meta-regressions in the working model with CR2 tests",
            sources = list(assink2016 = "metadat::dat.assink2016",
                           konstantopoulos2011 = "metadat::dat.konstantopoulos2011",
                           kalaian1996 = "metadat::dat.kalaian1996 (columns id, study, year, n1i, n2i, outcome, yi, vi)"),
            versions = versions(),
            datasets = out_sets)
jsonlite::write_json(out, file.path(ref, "pet_peese.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
