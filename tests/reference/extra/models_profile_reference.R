# Profile-likelihood confidence intervals of variance components (metafor 3.8 confint()):
#   * rma.mv: for each estimated sigma2, the values where the (RE)ML log-likelihood, maximised over
#     the other components with this one fixed, is qchisq(0.95, 1) / 2 below its maximum, searched
#     with uniroot(tol = .Machine$double.eps^0.25) in [0, max(10, 100 * sigma2)];
#   * rma (ML / REML): confint(res, type = "PL"), searched in [0, max(100, 10 * tau2)].
# Cases: three-level models of assink2016 (~ 1 | study/esid) and konstantopoulos2011
# (~ 1 | district/school), REML and ML, moderator models, a small subset whose lower bounds are 0,
# an upper bound not found within a narrowed search interval (control = list(vc.max = 0.5)), a
# 90% interval, and one-level PL intervals (bcg_rr, hackshaw1998; intercept-only and ~ ablat).
# Beside each bound the extractor stores the likelihood-ratio statistic of the profile at that
# bound (-2 * (logLik(refit with the component fixed at the bound) - logLik(res)); metafor's
# target is qchisq(level, 1)), so the precision of metafor's root search can be seen.
# Usage (from the reference folder, tests/reference):  Rscript extra/models_profile_reference.R
# Reads ../assink2016.csv, ../konstantopoulos2011.csv, ../bcg_rr.csv, ../hackshaw1998.csv;
# writes extra/models_profile_reference.json. R 4.2.2, metafor 3.8-1; helpers from R/common.R.

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

read_ref <- function(stem) read.csv(normalizePath(file.path(here, "..", paste0(stem, ".csv"))),
                                    stringsAsFactors = FALSE)
S <- new_store()

# LRT statistic of the profile at a value of one component (what metafor's root search targets)
profile_lrt <- function(res, pos, val) {
  if (inherits(res, "rma.mv")) {
    s2 <- ifelse(res$vc.fix$sigma2, res$sigma2, NA)
    s2[pos] <- val
    r <- rma.mv(res$yi, res$V, mods = res$X, intercept = FALSE, random = res$random,
                data = res$mf.r, method = res$method, sigma2 = s2, control = res$control)
  } else {
    r <- rma(res$yi, res$vi, mods = res$X, intercept = FALSE, method = res$method, tau2 = val)
  }
  -2 * (c(logLik(r)) - c(logLik(res)))
}

one_component <- function(ci, res, pos) {
  r <- ci$random
  out <- list(estimate = r[1, "estimate"], ci_lb = r[1, "ci.lb"], ci_ub = r[1, "ci.ub"],
              sqrt_estimate = r[2, "estimate"], sqrt_ci_lb = r[2, "ci.lb"], sqrt_ci_ub = r[2, "ci.ub"],
              lb_sign = ci$lb.sign, ub_sign = ci$ub.sign)
  out$lrt_at_ci_lb <- profile_lrt(res, pos, r[1, "ci.lb"])
  out$lrt_at_ci_ub <- profile_lrt(res, pos, r[1, "ci.ub"])
  if (nrow(r) > 2) {  # rma: I^2 and H^2 rows
    out$i2 <- list(estimate = r[3, "estimate"], ci_lb = r[3, "ci.lb"], ci_ub = r[3, "ci.ub"])
    out$h2 <- list(estimate = r[4, "estimate"], ci_lb = r[4, "ci.lb"], ci_ub = r[4, "ci.ub"])
  }
  out
}

ext_profile <- function(ci, env) {
  res <- get("res", envir = env)
  level <- if (exists("lev", envir = env)) get("lev", envir = env) else 95
  out <- list(method = res$method, level = level, loglik = c(logLik(res)),
              target = qchisq(level / 100, 1))
  if (inherits(res, "rma.mv")) {
    out$sigma2 <- num(res$sigma2)
    out$s_names <- unname(res$s.names)
    cis <- if (inherits(ci, "list.confint.rma")) ci[vapply(ci, is.list, TRUE)] else list(ci)
    pos <- if (exists("pos", envir = env)) get("pos", envir = env) else seq_along(cis)
    out$components <- lapply(seq_along(cis), function(j) c(list(position = pos[j]),
                                                         one_component(cis[[j]], res, pos[j])))
  } else {
    out$tau2 <- res$tau2
    out$components <- list(c(list(position = 1), one_component(ci, res, 1)))
  }
  out
}

ml3 <- function(random, mods = NULL, method = "REML", tail = "confint(res)", pre = "") {
  m <- if (is.null(mods)) "" else sprintf("mods = %s, ", mods)
  sprintf('%sres <- rma.mv(yi, vi, %srandom = %s, data=dat, method="%s"); %s', pre, m, random, method, tail)
}

ass <- read_ref("assink2016")
kon <- read_ref("konstantopoulos2011")
R_ASS <- "~ 1 | study/esid"
R_KON <- "~ 1 | district/school"
for (m in c("REML", "ML")) {
  run_case(S, paste0("assink2016__ml3_", snake(m), "_profile"), ml3(R_ASS, method = m), ext_profile, ass)
  run_case(S, paste0("konstantopoulos2011__ml3_", snake(m), "_profile"), ml3(R_KON, method = m), ext_profile, kon)
}
run_case(S, "assink2016__ml3_mods_deltype_year_reml_profile",
         ml3(R_ASS, "~ deltype + year"), ext_profile, ass)
run_case(S, "assink2016__ml3_mods_deltype_ml_profile",
         ml3(R_ASS, "~ deltype", "ML"), ext_profile, ass)
run_case(S, "konstantopoulos2011__ml3_mods_year_reml_profile",
         ml3(R_KON, "~ year"), ext_profile, kon)
run_case(S, "konstantopoulos2011__ml3_reml_profile_level90",
         ml3(R_KON, tail = "lev <- 90; confint(res, level=90)"), ext_profile, kon)
sub3 <- "dat <- dat[dat$district %in% c(11, 12, 18), ]; "
run_case(S, "konstantopoulos2011__subset3_ml3_reml_profile",
         ml3(R_KON, pre = sub3), ext_profile, kon)
run_case(S, "konstantopoulos2011__subset3_ml3_reml_profile_vcmax",
         ml3(R_KON, pre = sub3, tail = "pos <- 1; confint(res, sigma2=1, control=list(vc.max=0.5))"),
         ext_profile, kon)

bcg <- read_ref("bcg_rr")
hack <- read_ref("hackshaw1998")
for (m in c("REML", "ML")) {
  run_case(S, paste0("bcg_rr__uni_", snake(m), "_profile"),
           sprintf('res <- rma(yi, vi, data=dat, method="%s"); confint(res, type="PL")', m), ext_profile, bcg)
  run_case(S, paste0("hackshaw1998__uni_", snake(m), "_profile"),
           sprintf('res <- rma(yi, vi, data=dat, method="%s"); confint(res, type="PL")', m), ext_profile, hack)
}
run_case(S, "bcg_rr__metareg_ablat_reml_profile",
         'res <- rma(yi, vi, mods = ~ ablat, data=dat, method="REML"); confint(res, type="PL")', ext_profile, bcg)

out <- list(what = "profile-likelihood CIs of variance components: confint() on rma.mv, confint(type=\"PL\") on rma",
            data = "case names are <dataset>__<case>; `dat` is ../<dataset>.csv read by read.csv()",
            versions = versions(), cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "models_profile_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("   %d cases, %d failures", length(S$cases), length(S$failures)))
