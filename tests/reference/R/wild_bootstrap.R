# Cluster wild bootstrap Wald tests (Joshi, Pustejovsky & Beretvas 2022) with wildmeta.
# Usage (from the reference folder, tests/reference):  Rscript R/wild_bootstrap.R
# Reads assink2016.csv and konstantopoulos2011.csv, writes wild_bootstrap.json.
# R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8, wildmeta 0.3.2 (installed from the GitHub
# sources, github.com/meghapsimatrix/wildmeta at dd08e49, with R CMD INSTALL: CRAN was not
# reachable); set R_LIBS to the library holding it.
#
# Two kinds of case per model:
# * `draws_*`: 20 bootstrap replicates with Rademacher weights drawn here and stored (`eta`, one
#   row per replicate, columns = clusters in `clusters` order), the bootstrap outcomes built as
#   wildmeta's run_cwb() builds them (fitted values of the null model plus its residuals, adjusted
#   by clubSandwich's CR2 adjustment matrices of the null model, times the cluster's weight) and
#   the statistic of each replicate from wildmeta's own get_boot_F_f() (the full model refitted
#   by update(), REML, then clubSandwich's Wald_test): the statistics are exact targets.
# * `cwb_*`: Wald_test_cwb() itself with R replicates and a seed: the statistic of the data
#   (attr "original") is exact, the p value is a Monte Carlo estimate (R's RNG).

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))
suppressPackageStartupMessages(library(wildmeta))
ref <- normalizePath(file.path(here, ".."))

models <- list(
  assink_ml3_deltype = list(
    csv = "assink2016.csv", cluster = "study", constraints = "constrain_zero(2:3)",
    fit = 'rma.mv(yi, vi, mods = ~ deltype + year, random = ~ 1 | study/esid, data=dat, method="REML")'),
  assink_che06_deltype = list(
    csv = "assink2016.csv", cluster = "study", constraints = "constrain_zero(2:3)",
    fit = 'V <- impute_covariance_matrix(dat$vi, cluster=dat$study, r=0.6); rma.mv(yi, V, mods = ~ deltype + year, random = ~ 1 | study/esid, data=dat, method="REML")'),
  konstantopoulos_ml3_year = list(
    csv = "konstantopoulos2011.csv", cluster = "district", constraints = "constrain_zero(2)",
    fit = 'rma.mv(yi, vi, mods = ~ year, random = ~ 1 | district/school, data=dat, method="REML")')
)
variants <- list(cr2 = c(adjust = "CR2", type = "CR2", test = "HTZ"),
                 cr0 = c(adjust = "CR0", type = "CR0", test = "Naive-F"),
                 cr1 = c(adjust = "CR1", type = "CR1", test = "Naive-F"))
n_boot <- c(cr2 = 1999L, cr0 = 0L, cr1 = 0L)

draws_code <- function(m, v) sprintf(paste(
  'full <- { %s }; C <- %s(coef(full)); cl <- factor(dat$%s);',
  'null <- wildmeta:::estimate_null(full, C_mat = C);',
  'res <- residuals(null); pred <- fitted(null);',
  'if ("%s" != "CR0") { B <- attr(vcovCR(null, cluster = cl, type = "%s"), "adjustments");',
  '  res <- unsplit(Map(function(b, e) as.vector(b %%*%% e), B, split(res, cl)), cl) };',
  'set.seed(20261203); eta <- matrix(sample(c(-1, 1), 20 * nlevels(cl), replace = TRUE), nrow = 20);',
  'f <- wildmeta:::get_boot_F_f(full, C_mat = C, type = "%s", test = "%s");',
  'stat <- apply(eta, 1, function(e) f(pred + res * e[as.integer(cl)], cluster = cl));',
  'org <- Wald_test(full, constraints = C, vcov = vcovCR(full, cluster = cl, type = "%s"), test = "%s");',
  'list(clusters = levels(cl), eta = eta, statistics = stat, original = org$Fstat,',
  '     null_sigma2 = null$sigma2, full_sigma2 = full$sigma2, null_b = as.vector(null$beta))'),
  m$fit, sub("\\(.*", "", m$constraints), m$cluster, v[["adjust"]], v[["adjust"]],
  v[["type"]], v[["test"]], v[["type"]], v[["test"]])
cwb_code <- function(m, v, R) sprintf(paste(
  'full <- { %s }; w <- Wald_test_cwb(full, constraints = %s, R = %d, adjust = "%s", type = "%s",',
  'test = "%s", seed = 20261203); list(p_val = w$p_val, R = %d, original = attr(w, "original"),',
  'n_na = sum(is.na(attr(w, "bootstraps"))))'),
  m$fit, m$constraints, R, v[["adjust"]], v[["type"]], v[["test"]], R)

constraints_arg <- function(m) sub("^constrain_zero\\((.*)\\)$", "\\1", m$constraints)
ext_list <- function(x, env = NULL) {
  x$clusters <- arr(x$clusters)
  if (!is.null(x$eta)) x$eta <- mat_rows(x$eta)
  if (!is.null(x$statistics)) x$statistics <- arr(x$statistics)
  x
}

S <- new_store()
for (mn in names(models)) {
  m <- models[[mn]]
  dat <- read.csv(file.path(ref, m$csv), stringsAsFactors = FALSE)
  for (vn in names(variants)) {
    v <- variants[[vn]]
    dc <- sub(sprintf("%s(coef(full))", sub("\\(.*", "", m$constraints)),
              sprintf("%s(%s, coefs = coef(full))", sub("\\(.*", "", m$constraints), constraints_arg(m)),
              draws_code(m, v), fixed = TRUE)
    run_case(S, sprintf("draws_%s_%s", mn, vn), dc, ext_list, dat)
    if (n_boot[[vn]] > 0) {
      t0 <- Sys.time()
      run_case(S, sprintf("cwb_%s_%s", mn, vn), cwb_code(m, v, n_boot[[vn]]), ext_list, dat)
      message(sprintf("%s %s: %.0f s", mn, vn, as.numeric(Sys.time() - t0, units = "secs")))
    }
  }
}
out <- list(what = "cluster wild bootstrap Wald tests (wildmeta) of moderators in rma.mv models",
            versions = c(versions(), wildmeta = as.character(packageVersion("wildmeta"))),
            models = lapply(models, function(m) m[c("csv", "cluster", "constraints", "fit")]),
            cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(ref, "wild_bootstrap.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("%d cases, %d failures", length(S$cases), length(S$failures)))
