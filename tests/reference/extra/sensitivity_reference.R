# References for the sensitivity analyses (src/intervention_meta/analyses/sensitivity.py, influence.py):
# leave-one-cluster-out refits and per-cluster influence diagnostics of the three-level model.
# Usage (from the reference folder, tests/reference):  Rscript extra/sensitivity_reference.R
# Reads ../assink2016.csv and ../konstantopoulos2011.csv, writes extra/sensitivity_reference.json.
# R 4.2.2, metafor 3.8-1; helpers (run_case, new_store, arr, num, mat_rows) from R/common.R.
#
# Layout: {"versions": ..., "datasets": {"<stem>": {"csv", "random", "cluster", "cases", "failures"}}}
# Every case stores the exact R call (evaluated verbatim with `dat` = read.csv("<stem>.csv")).
#
# Cases (<random> = ~ 1 | study/esid for assink2016, ~ 1 | district/school for konstantopoulos2011;
# <cluster> = study / district; every model REML with test = "t", as the pipeline's default config)
#   loo_cluster_reml_t      leave one cluster out: for each cluster s (sorted), rma.mv(yi, vi,
#                           random = <random>, data = dat, subset = <cluster> != s, test = "t")
#                           (metafor's default control; no starting values given)
#   loo_cluster_reml_t_polished
#                           the same refits with the variance components polished to the REML
#                           optimum (see below), the rest by rma.mv at those components
#   influence_reml_t        metafor 3.8 on res <- rma.mv(yi, vi, random = <random>, data = dat,
#                           test = "t"): cooks.distance(res, cluster = dat$<cluster>),
#                           dfbetas(res, cluster = dat$<cluster>), hatvalues(res) (and its sum per
#                           cluster), rstudent(res) (each effect size left out in turn) and
#                           rstudent(res, cluster = dat$<cluster>) (cluster X2)
#   influence_reml_t_polished
#                           the same quantities by metafor's definitions (read from the 3.8-1 source
#                           of .cooks.distance.rma.mv, .dfbetas.rma.mv, .rstudent.rma.mv,
#                           hatvalues.rma.mv), with every variance-component estimate polished to the
#                           REML optimum by Fisher scoring (reml_fisher_scoring below, started at
#                           metafor's estimate) and the fixed effects from rma.mv at those components
#   *_mods_<tag>            the same for a moderator model (assink2016: ~ deltype); Cook's
#                           distance uses all coefficients (metafor's default btt), and the study
#                           holding the only effect sizes of the reference level gets NA (rank-deficient refit)
#
# Why a polished variant: Cook's distance and DFBETAS are differences of two fitted coefficient
# vectors. metafor's optimisers (nlminb by default) use numerical derivatives and stop some 1e-8 to
# 1e-6 (relative) short of the REML optimum, which shows up as up to ~1e-4 relative error in a small
# Cook's distance (and as 1.2e-6 in one leave-one-out SE of assink2016). The polished values are the same definitions at the optimum (|change| < 1e-13)
# and are the target for 1e-6 comparisons; the raw metafor output is kept beside them, and the
# largest relative difference between the two is stored per quantity (`raw_vs_polished_max_rel`).

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

# REML Fisher scoring for nested random intercepts (Harville 1977): M = diag(vi) + sum_l s_l Z_l Z_l',
# P = M^-1 - M^-1 X (X' M^-1 X)^-1 X' M^-1, score_l = -tr(P G_l)/2 + y' P G_l P y / 2,
# information_lm = tr(P G_l P G_m)/2 with G_l = Z_l Z_l'.
reml_fisher_scoring <- function(y, v, X, groups, start, tol = 1e-13, maxit = 500) {
  G <- lapply(groups, function(g) { Z <- model.matrix(~ factor(g) - 1); tcrossprod(Z) })
  s <- start
  for (it in seq_len(maxit)) {
    M <- diag(v, length(v))
    for (l in seq_along(s)) M <- M + s[l] * G[[l]]
    Mi <- chol2inv(chol(M))
    XMi <- crossprod(X, Mi)
    P <- Mi - t(XMi) %*% solve(XMi %*% X, XMi)
    Py <- P %*% y
    PG <- lapply(G, function(g) P %*% g)
    score <- vapply(seq_along(s), function(l)
      -0.5 * sum(diag(PG[[l]])) + 0.5 * c(crossprod(Py, G[[l]] %*% Py)), numeric(1))
    info <- matrix(0, length(s), length(s))
    for (a in seq_along(s)) for (b in seq_along(s)) info[a, b] <- 0.5 * sum(PG[[a]] * t(PG[[b]]))
    s_new <- s + solve(info, score)
    if (any(s_new <= 0)) stop("a variance component reached the boundary; polishing not defined")
    done <- max(abs(s_new - s)) < tol
    s <- s_new
    if (done) return(s)
  }
  stop("Fisher scoring did not converge")
}

# the rows, groups and moderators of one (sub)model, as rma.mv sees them
# (X: the full data's model matrix, so that a subset lacking a factor level is detected)
model_parts <- function(dat, rows, outer, inner, mods) {
  d <- dat[rows, , drop = FALSE]
  X <- if (is.null(mods)) matrix(1, nrow(dat), 1) else model.matrix(mods, data = dat)
  X <- X[rows, , drop = FALSE]
  list(d = d, X = X, groups = list(d[[outer]], paste(d[[outer]], d[[inner]], sep = "/")))
}

# metafor returns NA when a refit loses a coefficient (its model matrix is rank deficient, e.g.
# a factor level occurs only in the left-out rows)
loses_coefficient <- function(X, rows) qr(X[rows, , drop = FALSE])$rank < ncol(X)

polished_fit <- function(dat, rows, outer, inner, mods, random, start) {
  pp <- model_parts(dat, rows, outer, inner, mods)
  s2 <- reml_fisher_scoring(pp$d$yi, pp$d$vi, pp$X, pp$groups, start)
  args <- list(yi = quote(yi), V = quote(vi), random = random, data = dat, subset = rows,
               sigma2 = s2, test = "t")
  if (!is.null(mods)) args$mods <- mods
  res <- do.call(rma.mv, args)
  list(sigma2 = s2, res = res)
}

fit_at <- function(dat, mods, random, s2) {
  args <- list(yi = quote(yi), V = quote(vi), random = random, data = dat, sigma2 = s2, test = "t")
  if (!is.null(mods)) args$mods <- mods
  do.call(rma.mv, args)
}

# metafor's definitions, at polished components:
#   Cook's D_j   = (b - b_(j))[btt]' vb[btt, btt]^-1 (b - b_(j))[btt]   (full model's vb)
#   DFBETAS_j    = (b - b_(j)) / sqrt(diag(vb of the full data at sigma2_(j)))
#   hat_i        = diag(X (X'M^-1 X)^-1 X' M^-1); cluster sum
#   rstudent_i   = (y_i - x_i b_(i)) / sqrt(M_(i)[i, i] + x_i vb_(i) x_i'),  M_(i) = full-data
#                  marginal covariance at sigma2_(i); cluster X2_j likewise with the block of j
influence_polished <- function(dat, outer, inner, mods = NULL) {
  random <- as.formula(sprintf("~ 1 | %s/%s", outer, inner))
  args <- list(yi = quote(yi), V = quote(vi), random = random, data = dat, test = "t")
  if (!is.null(mods)) args$mods <- mods
  raw <- do.call(rma.mv, args)
  full <- polished_fit(dat, rep(TRUE, nrow(dat)), outer, inner, mods, random, raw$sigma2)
  res <- full$res
  p <- length(res$beta)
  btt <- seq_len(p)  # metafor: .set.btt(NULL, p, int.incl = FALSE) = all coefficients
  svb <- chol2inv(chol(res$vb[btt, btt, drop = FALSE]))
  cl <- dat[[outer]]
  ids <- sort(unique(cl))
  cook <- numeric(0); dfbs <- NULL; X2 <- numeric(0); kj <- numeric(0); s2del <- NULL; bdel <- NULL
  for (s in ids) {
    incl <- cl == s
    kj <- c(kj, sum(incl))
    if (loses_coefficient(res$X, !incl)) {
      cook <- c(cook, NA); dfbs <- rbind(dfbs, rep(NA, p)); X2 <- c(X2, NA)
      s2del <- rbind(s2del, rep(NA, 2)); bdel <- rbind(bdel, rep(NA, p))
      next
    }
    del <- polished_fit(dat, !incl, outer, inner, mods, random, full$sigma2)
    dfb <- c(res$beta - del$res$beta)
    cook <- c(cook, c(crossprod(dfb[btt], svb) %*% dfb[btt]))
    at <- fit_at(dat, mods, random, del$sigma2)
    dfbs <- rbind(dfbs, dfb / sqrt(diag(at$vb)))
    Xi <- res$X[incl, , drop = FALSE]
    r <- c(dat$yi[incl] - Xi %*% del$res$beta)
    S <- at$M[incl, incl, drop = FALSE] + Xi %*% del$res$vb %*% t(Xi)
    X2 <- c(X2, c(r %*% solve(S, r)))
    s2del <- rbind(s2del, del$sigma2)
    bdel <- rbind(bdel, c(del$res$beta))
  }
  hat <- hatvalues(res)
  resid <- numeric(nrow(dat)); se <- numeric(nrow(dat))
  for (i in seq_len(nrow(dat))) {
    keep <- seq_len(nrow(dat)) != i
    if (loses_coefficient(res$X, keep)) { resid[i] <- NA; se[i] <- NA; next }
    del <- polished_fit(dat, keep, outer, inner, mods, random, full$sigma2)
    at <- fit_at(dat, mods, random, del$sigma2)
    xi <- res$X[i, , drop = FALSE]
    resid[i] <- dat$yi[i] - c(xi %*% del$res$beta)
    se[i] <- sqrt(at$M[i, i] + c(xi %*% del$res$vb %*% t(xi)))
  }
  list(sigma2 = full$sigma2, beta = c(res$beta), vb = res$vb, btt = btt, cluster = ids,
       cook_d = cook, dfbetas = dfbs, x2 = X2, k = kj, sigma2_del = s2del, beta_del = bdel,
       hat = unname(hat), hat_cluster_sum = unname(tapply(unname(hat), cl, sum)[as.character(ids)]),
       rstudent_resid = resid, rstudent_se = se, rstudent_z = resid / se)
}

ext_loo <- function(fits, env) {
  list(cluster = arr(env$ids),
       estimate = mat_rows(t(sapply(fits, function(r) c(r$beta)))),
       se = mat_rows(t(sapply(fits, function(r) r$se))),
       tval = mat_rows(t(sapply(fits, function(r) r$zval))),
       dfs = num(sapply(fits, function(r) r$ddf[1])),
       pval = mat_rows(t(sapply(fits, function(r) r$pval))),
       ci_lb = mat_rows(t(sapply(fits, function(r) r$ci.lb))),
       ci_ub = mat_rows(t(sapply(fits, function(r) r$ci.ub))),
       sigma2 = mat_rows(t(sapply(fits, function(r) r$sigma2))),
       k = num(sapply(fits, function(r) r$k)),
       n_clusters = num(sapply(fits, function(r) r$s.nlevels[1])),
       coef_names = arr(rownames(fits[[1]]$beta)))
}

ext_infl_raw <- function(x, env) {
  cl <- env$dat[[env$outer]]
  list(cluster = arr(names(x$cook)),
       cook_d = num(x$cook),
       dfbetas = mat_rows(as.matrix(x$dfb)),
       dfbetas_columns = arr(colnames(x$dfb)),
       hat = num(x$hat),
       hat_cluster_sum = num(tapply(unname(x$hat), cl, sum)[names(x$cook)]),
       rstudent_resid = num(x$rst$resid), rstudent_se = num(x$rst$se), rstudent_z = num(x$rst$z),
       x2 = num(x$rstc$cluster$X2), k = num(x$rstc$cluster$k),
       x2_cluster = arr(as.character(x$rstc$cluster$slab)),
       sigma2 = num(x$res$sigma2), beta = arr(x$res$beta))
}

ext_infl_pol <- function(x, env) {
  list(cluster = arr(x$cluster), cook_d = num(x$cook_d), dfbetas = mat_rows(x$dfbetas),
       hat = num(x$hat), hat_cluster_sum = num(x$hat_cluster_sum),
       rstudent_resid = num(x$rstudent_resid), rstudent_se = num(x$rstudent_se),
       rstudent_z = num(x$rstudent_z), x2 = num(x$x2), k = num(x$k),
       sigma2 = num(x$sigma2), beta = arr(x$beta), btt = arr(x$btt),
       sigma2_del = mat_rows(x$sigma2_del), beta_del = mat_rows(x$beta_del))
}

max_rel <- function(a, b) max(abs(as.numeric(unlist(a)) / as.numeric(unlist(b)) - 1), na.rm = TRUE)

run_dataset <- function(stem, outer, inner, mods = list()) {
  dat <- read.csv(file.path(here, "..", paste0(stem, ".csv")), stringsAsFactors = FALSE)
  S <- new_store()
  rnd <- sprintf("~ 1 | %s/%s", outer, inner)
  loo_call <- sprintf(paste0(
    'ids <- sort(unique(dat$%s)); ',
    'lapply(ids, function(s) rma.mv(yi, vi, random = %s, data = dat, subset = %s != s, test = "t"))'),
    outer, rnd, outer)
  run_case(S, "loo_cluster_reml_t", loo_call, ext_loo, dat)
  loo_pol_call <- sprintf(paste0(
    'ids <- sort(unique(dat$%s)); full <- rma.mv(yi, vi, random = %s, data = dat, test = "t"); ',
    'lapply(ids, function(s) polished_fit(dat, dat$%s != s, "%s", "%s", NULL, %s, full$sigma2)$res)'),
    outer, rnd, outer, outer, inner, rnd)
  run_case(S, "loo_cluster_reml_t_polished", loo_pol_call, ext_loo, dat)
  S$cases$loo_cluster_reml_t_polished$raw_vs_polished_max_rel <- lapply(
    c(estimate = "estimate", se = "se", pval = "pval", sigma2 = "sigma2"),
    function(n) max_rel(S$cases$loo_cluster_reml_t$results[[n]],
                        S$cases$loo_cluster_reml_t_polished$results[[n]]))
  variants <- c(list(list(tag = "", mods = NULL)), mods)
  for (v in variants) {
    mtxt <- if (is.null(v$mods)) "" else sprintf(", mods = %s", deparse(v$mods))
    infl_call <- sprintf(paste0(
      'outer <- "%s"; res <- rma.mv(yi, vi, random = %s, data = dat%s, test = "t"); ',
      'list(res = res, cook = cooks.distance(res, cluster = dat$%s), ',
      'dfb = dfbetas(res, cluster = dat$%s), hat = hatvalues(res), rst = rstudent(res), ',
      'rstc = rstudent(res, cluster = dat$%s))'), outer, rnd, mtxt, outer, outer, outer)
    raw_name <- paste0("influence_reml_t", v$tag)
    run_case(S, raw_name, infl_call, ext_infl_raw, dat)
    pol_call <- sprintf('influence_polished(dat, "%s", "%s"%s)', outer, inner,
                        if (is.null(v$mods)) "" else sprintf(", mods = %s", deparse(v$mods)))
    pol_name <- paste0("influence_reml_t_polished", v$tag)
    run_case(S, pol_name, pol_call, ext_infl_pol, dat)
    raw <- S$cases[[raw_name]]$results
    pol <- S$cases[[pol_name]]$results
    S$cases[[pol_name]]$raw_vs_polished_max_rel <- lapply(
      c(cook_d = "cook_d", dfbetas = "dfbetas", hat = "hat", rstudent_z = "rstudent_z", x2 = "x2",
        sigma2 = "sigma2"),
      function(n) max_rel(raw[[n]], pol[[n]]))
  }
  list(csv = paste0("../", stem, ".csv"), random = rnd, cluster = outer,
       cases = S$cases, failures = S$failures)
}

out <- list(
  versions = versions(),
  polisher = paste(deparse(reml_fisher_scoring), collapse = "\n"),
  datasets = list(
    assink2016 = run_dataset("assink2016", "study", "esid",
                             mods = list(list(tag = "_mods_deltype", mods = ~ deltype))),
    konstantopoulos2011 = run_dataset("konstantopoulos2011", "district", "school")
  )
)
jsonlite::write_json(out, file.path(here, "sensitivity_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
for (stem in names(out$datasets)) {
  ds <- out$datasets[[stem]]
  message(sprintf("   %s: %d cases, %d failures", stem, length(ds$cases), length(ds$failures)))
  for (n in names(ds$cases)) if (!is.null(ds$cases[[n]]$raw_vs_polished_max_rel))
    message("     ", n, ": ", paste(names(ds$cases[[n]]$raw_vs_polished_max_rel),
            signif(unlist(ds$cases[[n]]$raw_vs_polished_max_rel), 3), sep = "=", collapse = " "))
}
