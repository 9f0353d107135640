# Exact permutation tests (metafor 3.8 permutest(..., exact = TRUE)) on small data sets, with the
# full permutation distributions, so that the enumeration, the refits and the p values can all be
# checked:
#   * rma: permutest(res, exact = TRUE) for ~ ablat on the first 6 trials of bcg_rr (REML; and ML
#     with test = "knha"), 720 row permutations; the intercept-only model on the first 8 trials
#     (2^8 = 256 sign flips); ~ alloc on the first 9 trials by DL, where permutest() itself switches
#     to the exact test (36 distinct permutations <= iter = 1000);
#   * rma.mv: metafor 3.8 has no permutest() for rma.mv, so the call below carries out exactly what
#     permutest.rma.uni does (the same enumeration of the distinct row permutations of the model
#     matrix with metafor:::.genuperms, or of all 2^k sign flips for an intercept-only model; each
#     refitted by rma.mv with the same random structure; p = proportion of permuted statistics at
#     least as extreme as the observed, with tolerance sqrt(.Machine$double.eps)):
#     konstantopoulos2011 districts 11, 12, 18 (k = 11) with the moderator late = year > 1980
#     (330 permutations), and districts 11 and 12 intercept-only (256 sign flips).
# Stored per case: the observed statistics, p values, and per permutation the row order applied to
# the model matrix (`rows`, 1-based: permuted X = X[rows, ]) or the signs (`signs`: permuted
# yi = signs * yi), with the statistics of that refit (qm_perm, zval_perm, beta_perm; for rma.mv
# also the variance components and the REML log-likelihood, sigma2_perm and loglik_perm).
# Usage (from the reference folder, tests/reference):  Rscript extra/models_permutation_reference.R
# Reads ../bcg_rr.csv and ../konstantopoulos2011.csv; writes extra/models_permutation_reference.json.
# R 4.2.2, metafor 3.8-1; helpers (run_case) from R/common.R.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

read_ref <- function(stem) read.csv(normalizePath(file.path(here, "..", paste0(stem, ".csv"))),
                                    stringsAsFactors = FALSE)
S <- new_store()

# the row orders / signs permutest.rma.uni enumerates for an exact test of `res`
enumeration <- function(res) {
  if (res$int.only) {
    return(list(signs = as.matrix(expand.grid(replicate(res$k, list(c(1, -1))), KEEP.OUT.ATTRS = FALSE))))
  }
  ord <- do.call(order, as.data.frame(res$X))
  X <- as.data.frame(res$X)[ord, ]
  idx <- cumsum(c(TRUE, !duplicated(X)[-1]))
  idx <- rep(cumsum(rle(idx)$lengths) - (rle(idx)$lengths - 1), rle(idx)$lengths)
  perms <- metafor:::.genuperms(idx)
  list(rows = matrix(ord[perms], nrow = nrow(perms)))
}

ext_perm <- function(pt, env) {
  res <- get("res", envir = env)
  out <- list(k = res$k, p = res$p, method = res$method, test = res$test,
              coef_names = arr(rownames(res$beta)), btt = arr(res$btt),
              exact_iter = pt$exact.iter, n_perm = length(pt$QM.perm),
              qm = res$QM, zval = arr(res$zval), b = arr(res$beta),
              pval = arr(pt$pval), qmp = pt$QMp,
              qm_perm = num(pt$QM.perm), zval_perm = mat_rows(as.matrix(pt$zval.perm)),
              beta_perm = mat_rows(as.matrix(pt$beta.perm)))
  if (!is.null(pt$sigma2.perm)) {
    out$sigma2 <- num(res$sigma2)
    out$sigma2_perm <- mat_rows(pt$sigma2.perm)
    out$loglik <- c(logLik(res))
    out$loglik_perm <- num(pt$loglik.perm)
  }
  c(out, lapply(enumeration(res), mat_rows))
}

bcg <- read_ref("bcg_rr")
run_case(S, "bcg_rr__ablat_reml_k6_exact",
         'd <- dat[1:6, ]; res <- rma(yi, vi, mods = ~ ablat, data=d, method="REML"); permutest(res, exact=TRUE, progbar=FALSE)',
         ext_perm, bcg)
run_case(S, "bcg_rr__ablat_ml_knha_k6_exact",
         'd <- dat[1:6, ]; res <- rma(yi, vi, mods = ~ ablat, data=d, method="ML", test="knha"); permutest(res, exact=TRUE, progbar=FALSE)',
         ext_perm, bcg)
run_case(S, "bcg_rr__intercept_reml_k8_exact",
         'd <- dat[1:8, ]; res <- rma(yi, vi, data=d, method="REML"); permutest(res, exact=TRUE, progbar=FALSE)',
         ext_perm, bcg)
run_case(S, "bcg_rr__alloc_dl_k9_auto_exact",
         'd <- dat[1:9, ]; res <- rma(yi, vi, mods = ~ alloc, data=d, method="DL"); permutest(res, iter=1000, progbar=FALSE)',
         ext_perm, bcg)

# exact permutation test of an rma.mv model, exactly as permutest.rma.uni does it for rma; a refit
# that fails is NA and left out (permutest: try-error -> next, na.rm = TRUE). rma.mv's default
# optimiser (nlminb) stops up to ~2e-5 (relative) short of the optimum on data this small, so the
# log-likelihood of each refit is stored too (loglik_perm).
mv_permutest <- paste(
  'permutest_mv <- function(res, random, d) {',
  '  refit <- function(yperm, X) {  # yi/vi are looked up in the data, so the flipped yi goes there',
  '    d2 <- d; d2$yi <- yperm',
  '    f <- try(rma.mv(yi, vi, mods = X, intercept = FALSE, random = random, data = d2,',
  '                    method = res$method, test = res$test, btt = res$btt), silent = TRUE)',
  '    if (inherits(f, "try-error")) NULL else f',
  '  }',
  '  if (res$int.only) {',
  '    signs <- as.matrix(expand.grid(replicate(res$k, list(c(1, -1))), KEEP.OUT.ATTRS = FALSE))',
  '    fits <- lapply(seq_len(nrow(signs)), function(i) refit(signs[i, ] * res$yi, res$X))',
  '  } else {',
  '    ord <- do.call(order, as.data.frame(res$X)); X <- as.data.frame(res$X)[ord, ]',
  '    idx <- cumsum(c(TRUE, !duplicated(X)[-1]))',
  '    idx <- rep(cumsum(rle(idx)$lengths) - (rle(idx)$lengths - 1), rle(idx)$lengths)',
  '    perms <- metafor:::.genuperms(idx)',
  '    fits <- lapply(seq_len(nrow(perms)), function(i) refit(res$yi, as.matrix(X[perms[i, ], ])))',
  '  }',
  '  get <- function(f, what, n) if (is.null(f)) rep(NA_real_, n) else c(f[[what]])',
  '  QM.perm <- sapply(fits, get, "QM", 1)',
  '  zval.perm <- matrix(t(sapply(fits, get, "zval", res$p)), ncol = res$p)',
  '  beta.perm <- matrix(t(sapply(fits, get, "beta", res$p)), ncol = res$p)',
  '  sigma2.perm <- matrix(t(sapply(fits, get, "sigma2", length(res$sigma2))), ncol = length(res$sigma2))',
  '  tol <- .Machine$double.eps^0.5',
  '  list(pval = rowMeans(t(abs(zval.perm)) >= abs(c(res$zval)) - tol, na.rm = TRUE),',
  '       QMp = mean(QM.perm >= res$QM - tol, na.rm = TRUE), QM.perm = QM.perm, zval.perm = zval.perm,',
  '       beta.perm = beta.perm, sigma2.perm = sigma2.perm, exact.iter = length(fits),',
  '       loglik.perm = sapply(fits, function(f) if (is.null(f)) NA_real_ else c(logLik(f))))',
  '}', sep = "\n")
kon <- read_ref("konstantopoulos2011")
run_case(S, "konstantopoulos2011__ml3_late_reml_3districts_exact",
         paste0(mv_permutest, '\nd <- dat[dat$district %in% c(11, 12, 18), ]; d$late <- as.numeric(d$year > 1980); ',
                'res <- rma.mv(yi, vi, mods = ~ late, random = ~ 1 | district/school, data=d, method="REML"); ',
                'permutest_mv(res, ~ 1 | district/school, d)'),
         ext_perm, kon)
run_case(S, "konstantopoulos2011__ml3_intercept_reml_2districts_exact",
         paste0(mv_permutest, '\nd <- dat[dat$district %in% c(11, 12), ]; ',
                'res <- rma.mv(yi, vi, random = ~ 1 | district/school, data=d, method="REML"); ',
                'permutest_mv(res, ~ 1 | district/school, d)'),
         ext_perm, kon)

out <- list(what = "exact permutation tests: permutest(exact=TRUE) for rma, the same enumeration for rma.mv",
            data = "case names are <dataset>__<case>; `dat` is ../<dataset>.csv read by read.csv(); each call subsets it",
            versions = versions(), cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "models_permutation_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = FALSE, na = "null", null = "null")
message(sprintf("   %d cases, %d failures", length(S$cases), length(S$failures)))
