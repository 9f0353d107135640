# Reference values for the vignette models (src/intervention_meta/vignette/models.py).
# Run from this folder: Rscript make_fixtures.R   (reads vignette_a.csv / vignette_b.csv made by
# make_data.R; writes vignette_a.json / vignette_b.json). See tests/reference/README.md.
suppressPackageStartupMessages({
  library(jsonlite); library(numDeriv); library(geepack); library(lme4); library(ordinal); library(emmeans)
})
emm_options(lmer.df = "asymptotic")  # z tests and intervals for lmer (tests use z, not KR/Satterthwaite)

specs <- list(
  list(name = "vignette_a", csv = "vignette_a.csv", cluster = "respondent",
       binary = "respond", likert = "responsibility",
       factors = list(role = c("parent", "professional", "volunteer"),
                      style = c("authoritative", "authoritarian", "permissive", "uninvolved"),
                      behaviour = c("prosocial", "externalising", "internalising"),
                      location = c("street", "school", "community_centre")),
       interactions = list(c("role", "style")),
       emmeans = list(list(factor = "style", by = NULL), list(factor = "behaviour", by = NULL),
                      list(factor = "location", by = NULL), list(factor = "role", by = NULL),
                      list(factor = "style", by = "role"))),
  list(name = "vignette_b", csv = "vignette_b.csv", cluster = "pid",
       binary = "helps", likert = "likert",
       factors = list(group = c("other", "professional"), tone = c("warm", "harsh", "neutral"),
                      conduct = c("calm", "disruptive")),
       interactions = list(c("group", "conduct")),
       emmeans = list(list(factor = "tone", by = NULL), list(factor = "group", by = NULL),
                      list(factor = "conduct", by = "group")))
)

term_names <- function(factors, interactions) {
  out <- "(Intercept)"
  for (f in names(factors)) out <- c(out, sprintf("%s[%s]", f, factors[[f]][-1]))
  for (ia in interactions) {
    g <- expand.grid(factors[[ia[1]]][-1], factors[[ia[2]]][-1], stringsAsFactors = FALSE)
    out <- c(out, sprintf("%s[%s]:%s[%s]", ia[1], g[[1]], ia[2], g[[2]]))
  }
  out
}

emm_rows <- function(fit, spec, ...) {
  out <- list()
  for (e in spec$emmeans) {
    form <- if (is.null(e$by)) as.formula(paste("~", e$factor)) else
      as.formula(paste("~", e$factor, "|", e$by))
    em <- emmeans(fit, form, ...)
    link <- as.data.frame(summary(em, infer = c(TRUE, TRUE)))
    resp <- as.data.frame(summary(em, type = "response", infer = c(TRUE, TRUE)))
    out[[length(out) + 1]] <- list(
      factor = e$factor, by = e$by, call = paste0("emmeans(fit, ", deparse(form), ", ...)"),
      level = as.character(link[[e$factor]]),
      by_level = if (is.null(e$by)) NULL else as.character(link[[e$by]]),
      link = link, response = resp)
  }
  out
}

joint <- function(fit, ...) {
  jt <- as.data.frame(joint_tests(fit, ...))
  # joint_tests prints F.ratio rounded to 3 decimals; the Wald chi-square is recovered from the
  # unrounded p-value (df2 = Inf: p = P(chi2_df1 > df1 * F)).
  list(term = as.character(jt[["model term"]]), df1 = jt$df1, df2 = jt$df2,
       f_ratio = jt$F.ratio, p = jt$p.value,
       chi2 = qchisq(jt$p.value, jt$df1, lower.tail = FALSE))
}

coef_block <- function(est, se, vc, names) {
  stopifnot(length(est) == length(names))
  list(terms = names, estimate = unname(est), se = unname(se), vcov = unname(as.matrix(vc)))
}

for (spec in specs) {
  dat <- read.csv(spec$csv, stringsAsFactors = FALSE)
  for (f in names(spec$factors)) dat[[f]] <- factor(dat[[f]], levels = spec$factors[[f]])
  dat$cluster_id <- factor(dat[[spec$cluster]], levels = unique(dat[[spec$cluster]]))
  rhs <- paste(c(names(spec$factors), sapply(spec$interactions, paste, collapse = ":")),
               collapse = " + ")
  terms <- term_names(spec$factors, spec$interactions)
  res <- list()

  # GEE: geeglm needs each cluster's rows together; sort by cluster, keep order within it.
  dgee <- dat[order(as.integer(dat$cluster_id), seq_len(nrow(dat))), ]
  f_gee <- as.formula(paste(spec$binary, "~", rhs))
  gee <- geeglm(f_gee, family = binomial, id = cluster_id, data = dgee, corstr = "exchangeable",
                control = geese.control(epsilon = 1e-12, maxit = 200))
  sm <- summary(gee)$coefficients
  res$gee <- c(list(call = paste0("geeglm(", deparse(f_gee), ", family = binomial, id = cluster_id, ",
                                  "data = dgee, corstr = \"exchangeable\", ",
                                  "control = geese.control(epsilon = 1e-12, maxit = 200))")),
               coef_block(coef(gee), sm[, "Std.err"], vcov(gee), terms),
               list(alpha = unname(gee$geese$alpha), scale = unname(gee$geese$gamma),
                    emmeans = emm_rows(gee, spec), joint_tests = joint(gee)))

  # GLMM, Laplace and 10-point adaptive Gauss-Hermite quadrature.
  f_glmm <- as.formula(paste(spec$binary, "~", rhs, "+ (1 | cluster_id)"))
  for (q in c(1, 10)) {
    g <- glmer(f_glmm, family = binomial, data = dat, nAGQ = q,
               control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                                      optCtrl = list(maxfun = 1e5, rhobeg = 2e-3, rhoend = 1e-10)))
    key <- if (q == 1) "glmm_laplace" else "glmm_agq10"
    # vcov(g) inverts lme4's own finite-difference Hessian of the deviance over (theta, beta)
    # (deriv12, step 1e-4), whose rounding noise reaches a few 1e-5 in the SEs. The same Hessian
    # by Richardson extrapolation (numDeriv::hessian) of lme4's deviance function is accurate to
    # about 1e-8; the marginal means and joint tests are computed with that covariance.
    devf <- update(g, devFunOnly = TRUE)
    h_rich <- numDeriv::hessian(devf, c(getME(g, "theta"), fixef(g)))
    v_rich <- solve(h_rich / 2)[-1, -1]
    dimnames(v_rich) <- dimnames(vcov(g))
    res[[key]] <- c(list(call = paste0("glmer(", deparse(f_glmm), ", family = binomial, data = dat, nAGQ = ", q,
                                       ", control = glmerControl(optimizer = \"bobyqa\", tolPwrss = 1e-12, optCtrl = list(maxfun = 1e5, rhobeg = 2e-3, rhoend = 1e-10)))"),
                         vcov_richardson_call = "solve(numDeriv::hessian(update(fit, devFunOnly = TRUE), c(getME(fit, \"theta\"), fixef(fit))) / 2)[-1, -1]"),
                    coef_block(fixef(g), sqrt(diag(vcov(g))), vcov(g), terms),
                    list(se_richardson = unname(sqrt(diag(v_rich))), vcov_richardson = unname(v_rich),
                         cluster_sd = unname(attr(VarCorr(g)$cluster_id, "stddev")),
                         loglik = as.numeric(logLik(g)),
                         emmeans = emm_rows(g, spec, vcov. = v_rich),
                         joint_tests = joint(g, vcov. = v_rich)))
  }

  # LMM, REML.
  f_lmm <- as.formula(paste(spec$likert, "~", rhs, "+ (1 | cluster_id)"))
  l <- lmer(f_lmm, data = dat, REML = TRUE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
  vc <- as.data.frame(VarCorr(l))
  res$lmm <- c(list(call = paste0("lmer(", deparse(f_lmm), ", data = dat, REML = TRUE)")),
               coef_block(fixef(l), sqrt(diag(vcov(l))), as.matrix(vcov(l)), terms),
               list(cluster_sd = vc$sdcor[1], residual_sd = vc$sdcor[2],
                    loglik = as.numeric(logLik(l)),
                    emmeans = emm_rows(l, spec), joint_tests = joint(l)))

  # Cumulative logit.
  dat$likert_ord <- factor(dat[[spec$likert]], ordered = TRUE)
  f_clm <- as.formula(paste("likert_ord ~", rhs))
  cm <- clm(f_clm, data = dat, link = "logit", control = clm.control(gradTol = 1e-10))
  nth <- length(cm$alpha)
  scm <- coef(summary(cm))
  res$clm <- c(list(call = paste0("clm(factor(", spec$likert, ", ordered = TRUE) ~ ", rhs,
                                  ", data = dat, link = \"logit\", control = clm.control(gradTol = 1e-10))")),
               coef_block(cm$beta, scm[-(1:nth), "Std. Error"], vcov(cm)[-(1:nth), -(1:nth)],
                          terms[-1]),
               list(thresholds = list(name = names(cm$alpha), estimate = unname(cm$alpha),
                                      se = unname(scm[1:nth, "Std. Error"])),
                    vcov_full = unname(vcov(cm)),
                    loglik = as.numeric(logLik(cm)),
                    emmeans = emm_rows(cm, spec, mode = "mean.class"),
                    joint_tests = joint(cm)))

  out <- list(dataset = spec$name, csv = spec$csv, cluster = spec$cluster,
              binary = spec$binary, likert = spec$likert,
              factors = spec$factors, interactions = spec$interactions,
              versions = list(r = paste(R.version$major, R.version$minor, sep = "."),
                              geepack = as.character(packageVersion("geepack")),
                              lme4 = as.character(packageVersion("lme4")),
                              ordinal = as.character(packageVersion("ordinal")),
                              emmeans = as.character(packageVersion("emmeans")),
                              numDeriv = as.character(packageVersion("numDeriv")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              models = res)
  write_json(out, paste0(spec$name, ".json"), auto_unbox = TRUE, digits = NA, pretty = TRUE,
             null = "null", na = "null", dataframe = "columns")
}
