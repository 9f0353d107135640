# Step-function selection models (Vevea & Hedges 1995) fitted by metafor's selmodel().
# Usage (from the reference folder):  Rscript R/selection.R
# Writes selection_metafor.json: per case the data (yi, vi, the model matrix), the R call and
# metafor's results. Every fit is selmodel(type = "stepfun") on rma(yi, vi, mods, method = "ML"),
# selmodel's own default input (it refits any other method with ML).
#
# control = list(optimizer = "nlminb", rel.tol = 1e-10, ...): with its default (optim's BFGS,
# reltol 1.5e-8 on the log-likelihood) selmodel stops up to about 2e-5 (relative) short of the
# maximum (e.g. baskerville2012: delta[2] is 0.44043368 with the default and 0.44044036 at the
# maximum), and BFGS with reltol = 1e-12 still stops early (bangertdrowns2004, two steps: 6e-6);
# nlminb at rel.tol = 1e-10 reaches the maximum (tighter rel.tol makes it report false
# convergence). The optimiser changes only where the search stops; the likelihood, the Hessian
# (numDeriv, untransformed scale) and every formula are metafor's. The results with the default
# control are stored too (`results_default_control`).
suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

num <- function(x) unname(as.numeric(x))
arr <- function(x) I(num(x))
mat_rows <- function(m) {
  m <- as.matrix(m)
  dimnames(m) <- NULL
  m
}

extract <- function(sel) {
  list(
    coef_names = I(rownames(sel$beta)),
    b = arr(sel$beta), se = arr(sel$se), zval = arr(sel$zval), pval = arr(sel$pval),
    ci_lb = arr(sel$ci.lb), ci_ub = arr(sel$ci.ub), vb = mat_rows(sel$vb),
    tau2 = num(sel$tau2), se_tau2 = num(sel$se.tau2),
    ci_lb_tau2 = num(sel$ci.lb.tau2), ci_ub_tau2 = num(sel$ci.ub.tau2),
    delta = arr(sel$delta), se_delta = arr(sel$se.delta),
    ci_lb_delta = arr(sel$ci.lb.delta), ci_ub_delta = arr(sel$ci.ub.delta),
    steps = arr(sel$steps), ptable_k = arr(sel$ptable$k),
    ll = num(sel$ll), ll0 = num(sel$ll0),
    lrt = num(sel$LRT), lrtdf = num(sel$LRTdf), lrtp = num(sel$LRTp),
    lrt_tau2 = num(sel$LRT.tau2), lrtp_tau2 = num(sel$LRTp.tau2)
  )
}

# metadat data sets as (yi, vi) frames
datasets <- list(
  hackshaw1998 = list(source = "metadat::dat.hackshaw1998 (yi = log OR, vi given)",
                      dat = dat.hackshaw1998),
  baskerville2012 = list(source = "metadat::dat.baskerville2012 (yi = smd, vi = se^2)",
                         dat = transform(dat.baskerville2012, yi = smd, vi = se^2)),
  bangertdrowns2004 = list(source = "metadat::dat.bangertdrowns2004 (SMD, yi/vi given; rows with NA length dropped for ~ length)",
                           dat = dat.bangertdrowns2004)
)

cases <- list(
  list(name = "hackshaw1998_step025", data = "hackshaw1998", mods = "~ 1", steps = "0.025", alternative = "greater"),
  list(name = "hackshaw1998_step025_05", data = "hackshaw1998", mods = "~ 1", steps = "c(0.025, 0.5)", alternative = "greater"),
  list(name = "hackshaw1998_year_step025", data = "hackshaw1998", mods = "~ year", steps = "0.025", alternative = "greater"),
  list(name = "baskerville2012_step025", data = "baskerville2012", mods = "~ 1", steps = "0.025", alternative = "greater"),
  list(name = "bangertdrowns2004_step025", data = "bangertdrowns2004", mods = "~ 1", steps = "0.025", alternative = "greater"),
  list(name = "bangertdrowns2004_step025_05", data = "bangertdrowns2004", mods = "~ 1", steps = "c(0.025, 0.5)", alternative = "greater"),
  list(name = "bangertdrowns2004_length_step025", data = "bangertdrowns2004", mods = "~ length", steps = "0.025", alternative = "greater"),
  list(name = "bangertdrowns2004_length_step025_05", data = "bangertdrowns2004", mods = "~ length", steps = "c(0.025, 0.5)", alternative = "greater"),
  list(name = "hackshaw1998_less_step05", data = "hackshaw1998", mods = "~ 1", steps = "c(0.05, 0.5)", alternative = "less"),
  list(name = "hackshaw1998_two_step05", data = "hackshaw1998", mods = "~ 1", steps = "0.05", alternative = "two.sided"),
  list(name = "hackshaw1998_year_two_step05", data = "hackshaw1998", mods = "~ year", steps = "0.05", alternative = "two.sided"),
  list(name = "bangertdrowns2004_two_step05_05", data = "bangertdrowns2004", mods = "~ 1", steps = "c(0.05, 0.5)", alternative = "two.sided"),
  list(name = "baskerville2012_two_step05", data = "baskerville2012", mods = "~ 1", steps = "0.05", alternative = "two.sided")
)

out <- list(
  versions = list(r = R.version.string, metafor = as.character(packageVersion("metafor")),
                  metadat = as.character(packageVersion("metadat")),
                  numderiv = as.character(packageVersion("numDeriv"))),
  cases = list()
)

for (cs in cases) {
  ds <- datasets[[cs$data]]
  dat <- ds$dat
  mods <- as.formula(cs$mods)
  keep <- complete.cases(model.frame(update(mods, yi ~ . + vi), data = dat, na.action = na.pass))
  dat <- dat[keep, ]
  fit_call <- sprintf("res <- rma(yi, vi, mods = %s, data = dat, method = \"ML\")", cs$mods)
  sel_call <- sprintf("selmodel(res, type = \"stepfun\", steps = %s, alternative = \"%s\", control = list(optimizer = \"nlminb\", rel.tol = 1e-10, iter.max = 1000, eval.max = 5000))",
                      cs$steps, cs$alternative)
  def_call <- sprintf("selmodel(res, type = \"stepfun\", steps = %s, alternative = \"%s\")", cs$steps, cs$alternative)
  eval(parse(text = fit_call))
  # the model without selection at its maximum (rma's default threshold, 1e-5 on tau2, stops short)
  ml_call <- sprintf("rma(yi, vi, mods = %s, data = dat, method = \"ML\", control = list(threshold = 1e-12, maxiter = 1000))", cs$mods)
  ml <- eval(parse(text = ml_call))
  sel <- eval(parse(text = sel_call))
  sel_default <- eval(parse(text = def_call))
  # the same model with every weight fixed at 1: the ML random-effects model, with selmodel's
  # variance (inverse observed information of beta and tau2, not rma's (X'WX)^-1)
  null_call <- sub("alternative", "delta = 1, alternative", sel_call)
  sel_null <- eval(parse(text = null_call))
  out$cases[[cs$name]] <- list(
    source = ds$source, mods = cs$mods, alternative = cs$alternative,
    call = paste(fit_call, sel_call, sep = "; "),
    call_default_control = paste(fit_call, def_call, sep = "; "),
    data = list(yi = arr(dat$yi), vi = arr(dat$vi), X = mat_rows(model.matrix(mods, data = dat))),
    ml_fit = list(call = ml_call, b = arr(ml$beta), se = arr(ml$se), tau2 = num(ml$tau2),
                  loglik = num(logLik(ml, REML = FALSE))),
    results = extract(sel),
    results_default_control = extract(sel_default),
    call_null = paste(fit_call, null_call, sep = "; "),
    results_null = list(b = arr(sel_null$beta), se = arr(sel_null$se), vb = mat_rows(sel_null$vb),
                        tau2 = num(sel_null$tau2), se_tau2 = num(sel_null$se.tau2), ll = num(sel_null$ll))
  )
}

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
write_json(out, file.path(here, "..", "selection_metafor.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null", null = "null")
message(sprintf("%d cases written", length(out$cases)))

# ---------------------------------------------------------------------------------------------
# Composite marginal likelihood with dependent effects: metaselection (Pustejovsky, Citkowicz &
# Joshi 2025). Written to selection_metaselection.json when the package can be loaded. CRAN was
# not reachable here; it was installed from the GitHub snapshot (jepusto/metaselection, version
# 0.1.5, commit ac99bd1a344c4f87389018ac26bcb7a458f56d2a) with `R CMD INSTALL --library=<lib>`
# after dropping `simhelpers` from Imports (used only through simhelpers:: for bootstrap CIs,
# which these cases do not compute); put <lib> first in R_LIBS to run this part.
# priors = NULL: metaselection's default penalises the likelihood with weak priors (define_priors);
# the plain CML is the estimator compared here. vcov_type = "robust": the cluster sandwich.
if (requireNamespace("metaselection", quietly = TRUE)) {
  ms_cases <- list(
    list(name = "assink2016_step025", mods = NULL, steps = "0.025"),
    list(name = "assink2016_step025_05", mods = NULL, steps = "c(0.025, 0.5)"),
    list(name = "assink2016_year_step025", mods = "~ year", steps = "0.025")
  )
  ms <- list(
    versions = list(r = R.version.string,
                    metaselection = as.character(packageVersion("metaselection")),
                    metaselection_commit = "ac99bd1a344c4f87389018ac26bcb7a458f56d2a",
                    metadat = as.character(packageVersion("metadat"))),
    cases = list()
  )
  dat <- metadat::dat.assink2016
  for (cs in ms_cases) {
    call <- sprintf(paste0("metaselection::selection_model(data = dat, yi = yi, vi = vi, cluster = study, ",
                           "selection_type = \"step\", steps = %s,%s priors = NULL, estimator = \"CML\", ",
                           "vcov_type = \"robust\")"),
                    cs$steps, if (is.null(cs$mods)) "" else sprintf(" mean_mods = %s,", cs$mods))
    fit <- eval(parse(text = call))
    X <- if (is.null(cs$mods)) matrix(1, nrow(dat), 1) else model.matrix(as.formula(cs$mods), data = dat)
    ms$cases[[cs$name]] <- list(
      source = "metadat::dat.assink2016 (SMD, yi/vi given; cluster = study)",
      call = call,
      data = list(yi = arr(dat$yi), vi = arr(dat$vi), cluster = arr(dat$study), X = mat_rows(X)),
      results = list(param = I(fit$est$param), est = arr(fit$est$Est), se = arr(fit$est$SE),
                     vcov = mat_rows(fit$vcov), ll = num(fit$ll), optimizer = fit$method)
    )
  }
  write_json(ms, file.path(here, "..", "selection_metaselection.json"), digits = NA,
             auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
  message(sprintf("%d metaselection cases written", length(ms$cases)))
}
