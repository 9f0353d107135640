# Extra references for the moderator analyses (src/intervention_meta/analyses/moderators.py).
# Usage (from the reference folder, tests/reference):  Rscript extra/moderators_reference.R
# Reads ../assink2016.csv, writes extra/moderators_reference.json.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8; helpers (run_case, extractors) from R/common.R.
#
# The pipeline fits every moderator ALONE (one three-level meta-regression per moderator), so the
# references here are single-moderator models of assink2016 (random = ~ 1 | study/esid, REML,
# test = "t"), with factor levels in the codebook's order (data/examples/assink2016/codebook.yaml:
# deltype general, overt, covert; pubstatus 0, 1). Every case stores its exact R call, evaluated
# verbatim with `dat` = read.csv("../assink2016.csv").
#
# Cases
#   deltype_means          ~ factor(deltype) - 1: the mean g per category (intercept-free)
#   deltype_means_cr2      clubSandwich CR2 coef_test / conf_int of that model (cluster = study)
#   deltype_test           ~ factor(deltype): omnibus F (QM, test="t"), sigma2, pseudo-R2
#   deltype_test_htz       Wald_test HTZ of the two contrasts of that model (constrain_zero(2:3))
#   deltype_min3_test      the same model without the category with fewer than 3 studies (covert,
#                          1 study): what the pipeline tests with moderators.min_studies = 3
#   deltype_min3_test_htz  its Wald_test HTZ (constrain_zero(2))
#   year                   ~ year (continuous): slope, intercept, F, sigma2, pseudo-R2
#   year_cr2               CR2 coef_test / conf_int of that model
#   pubstatus_means        ~ factor(pubstatus) - 1 and its CR2 (_cr2)
#   pubstatus_test         ~ factor(pubstatus): F, sigma2, pseudo-R2; _htz: Wald_test HTZ
#   vif_deltype_year       variance inflation factors of the model ~ factor(deltype) + year:
#                          weighted -- each column of the design whitened by the model's marginal
#                          covariance M (X* = U'^{-1} X with M = U'U); VIF_j = TSS_j / RSS_j with
#                          RSS_j the residual SS of X*_j on the other whitened columns and TSS_j
#                          that on the whitened intercept alone; unweighted -- diag(solve(cor(X[,-1])))

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

# pseudo-R2 (rma.mv does not report it): 100 * max(0, (sum(sigma2_0) - sum(sigma2)) / sum(sigma2_0))
# with sigma2_0 from the intercept-only model on the same rows, as metafor's rma.uni R2
ext_mod <- function(res, env = NULL) {
  out <- ext_mv(res)
  out$vb <- NULL
  if (res$int.incl && res$p > 1) {
    r0 <- rma.mv(yi, vi, random = ~ 1 | study/esid, data = res$data, test = "t")
    s0 <- sum(r0$sigma2)
    out$r2 <- 100 * max(0, (s0 - sum(res$sigma2)) / s0)
    out$r2_sigma2_0 <- num(r0$sigma2)
    out$r2_note <- "pseudo-R2 against rma.mv(yi, vi, random = ~ 1 | study/esid, data = <same rows>, test = \"t\")"
  }
  out
}

ext_vif <- function(x, env = NULL) {
  list(coef_names = arr(x$names), vif_weighted = arr(x$weighted),
       vif_unweighted = arr(x$unweighted), sigma2 = num(x$sigma2))
}

csv <- normalizePath(file.path(here, "..", "assink2016.csv"))
dat <- read.csv(csv, stringsAsFactors = FALSE)
S <- new_store()

rnd <- "random = ~ 1 | study/esid"
dl <- 'factor(deltype, levels=c("general", "overt", "covert"))'
mv <- function(mods, data = "dat") {
  sprintf('rma.mv(yi, vi, mods = %s, %s, data=%s, test="t")', mods, rnd, data)
}
cr2 <- function(fit) {
  sprintf('res <- %s; list(coef_test=coef_test(res, vcov="CR2", cluster=dat$study, test="Satterthwaite"), conf_int=conf_int(res, vcov="CR2", cluster=dat$study), vcov=vcovCR(res, type="CR2", cluster=dat$study))', fit)
}
htz <- function(fit, coefs, cluster = "dat$study") {
  sprintf('res <- %s; Wald_test(res, constraints=constrain_zero(%s), vcov="CR2", cluster=%s, test="HTZ")',
          fit, coefs, cluster)
}

run_case(S, "deltype_means", mv(sprintf("~ %s - 1", dl)), ext_mod, dat)
run_case(S, "deltype_means_cr2", cr2(mv(sprintf("~ %s - 1", dl))), ext_cr2, dat)
run_case(S, "deltype_test", mv(sprintf("~ %s", dl)), ext_mod, dat)
run_case(S, "deltype_test_htz", htz(mv(sprintf("~ %s", dl)), "2:3"), ext_wald, dat)
sub <- 'd3 <- dat[dat$deltype != "covert", ]; '
run_case(S, "deltype_min3_test",
         paste0(sub, mv('~ factor(deltype, levels=c("general", "overt"))', "d3")), ext_mod, dat)
run_case(S, "deltype_min3_test_htz",
         paste0(sub, htz(mv('~ factor(deltype, levels=c("general", "overt"))', "d3"), "2", "d3$study")),
         ext_wald, dat)
run_case(S, "year", mv("~ year"), ext_mod, dat)
run_case(S, "year_cr2", cr2(mv("~ year")), ext_cr2, dat)
run_case(S, "pubstatus_means", mv("~ factor(pubstatus) - 1"), ext_mod, dat)
run_case(S, "pubstatus_means_cr2", cr2(mv("~ factor(pubstatus) - 1")), ext_cr2, dat)
run_case(S, "pubstatus_test", mv("~ factor(pubstatus)"), ext_mod, dat)
run_case(S, "pubstatus_test_htz", htz(mv("~ factor(pubstatus)"), "2"), ext_wald, dat)

vif_call <- paste0(
  'res <- ', mv(sprintf("~ %s + year", dl)), '; ',
  'X <- model.matrix(res); U <- chol(res$M); Xw <- backsolve(U, X, transpose=TRUE); ',
  'rss <- function(y, A) sum(qr.resid(qr(A), y)^2); ',
  'w <- sapply(2:ncol(X), function(j) rss(Xw[, j], Xw[, 1, drop=FALSE]) / rss(Xw[, j], Xw[, -j, drop=FALSE])); ',
  'u <- diag(solve(cor(X[, -1]))); ',
  'list(names=colnames(X)[-1], weighted=w, unweighted=u, sigma2=res$sigma2)')
run_case(S, "vif_deltype_year", vif_call, ext_vif, dat)

out <- list(versions = versions(), dataset = "assink2016", csv = "../assink2016.csv",
            cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "moderators_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("%d cases, %d failures", length(S$cases), length(S$failures)))
