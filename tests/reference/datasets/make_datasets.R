# Three published data sets from R's metadat, shaped as a user would bring them (a studies table
# and an effects table, their own column names), and the metafor/clubSandwich results the
# pipeline must reproduce on them.
# Usage (from this folder):  Rscript make_datasets.R
# Writes <name>/studies.csv, <name>/effects.csv and <name>/reference.json for
#   crede2010     correlations (r, n), effect sizes nested in samples nested in studies
#   bcg           2x2 counts, log risk ratio, one effect per trial
#   normand1999   means/SDs under renamed columns, mean difference, study key "trial_code"
# The codebook.yaml and config.yaml of each folder are written by hand (see README.md).
suppressPackageStartupMessages({library(metafor); library(metadat); library(clubSandwich); library(jsonlite)})

versions <- list(r = R.version.string, metafor = as.character(packageVersion("metafor")),
                 metadat = as.character(packageVersion("metadat")),
                 clubsandwich = as.character(packageVersion("clubSandwich")))

wcsv <- function(d, path) write.csv(d, path, row.names = FALSE, na = "")

# the model results every case reports
model_out <- function(res) {
  out <- list(k = res$k, coef_names = rownames(res$beta), b = as.numeric(res$beta),
              se = as.numeric(res$se), pval = as.numeric(res$pval),
              ci_lb = as.numeric(res$ci.lb), ci_ub = as.numeric(res$ci.ub),
              dfs = as.numeric(res$ddf), qe = res$QE, qep = res$QEp, qm = res$QM, qmp = res$QMp,
              loglik = as.numeric(logLik(res)))
  if (inherits(res, "rma.mv")) {
    out$sigma2 <- as.numeric(res$sigma2)
    out$s_nlevels <- as.numeric(res$s.nlevels)
  } else {
    out$tau2 <- res$tau2
    out$i2 <- res$I2
  }
  p <- predict(res)
  out$pi_lb <- as.numeric(p$pi.lb)[1]
  out$pi_ub <- as.numeric(p$pi.ub)[1]
  out
}
cr2_out <- function(res, cluster) {
  ct <- coef_test(res, vcov = "CR2", cluster = cluster, test = "Satterthwaite")
  ci <- conf_int(res, vcov = "CR2", cluster = cluster)
  list(coef = as.character(ct$Coef), beta = ct$beta, se = ct$SE, tstat = ct$tstat,
       df_satt = ct$df_Satt, p_satt = ct$p_Satt, ci_l = ci$CI_L, ci_u = ci$CI_U)
}
save_json <- function(x, path) writeLines(toJSON(x, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"), path)

# ------------------------------------------------------------------ crede2010
dir.create("crede2010", showWarnings = FALSE)
d <- dat.crede2010
d$esid <- seq_len(nrow(d))
studies <- unique(d[, c("studyid", "year", "source")])
effects <- data.frame(esid = d$esid, studyid = d$studyid, sampleid = d$sampleid,
                      criterion = d$criterion, class = d$class, es_input = "r",
                      ri = d$ri, ni = d$ni)
wcsv(studies, "crede2010/studies.csv")
wcsv(effects, "crede2010/effects.csv")
dat <- merge(read.csv("crede2010/effects.csv"), read.csv("crede2010/studies.csv"), by = "studyid", sort = FALSE)
dat <- dat[order(dat$esid), ]
dat <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat)
random <- ~ 1 | studyid/sampleid/esid
res <- rma.mv(yi, vi, random = random, data = dat, method = "REML", test = "t")
# variance distribution (Cheung 2014): typical sampling variance from the intercept-only model
W <- diag(1 / dat$vi); X <- model.matrix(res)
P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
typical_v <- (res$k - res$p) / sum(diag(P))
i2 <- 100 * res$sigma2 / (sum(res$sigma2) + typical_v)
lrt <- lapply(1:3, function(l) {
  s2 <- rep(NA, 3); s2[l] <- 0
  red <- rma.mv(yi, vi, random = random, data = dat, method = "REML", test = "t", sigma2 = s2)
  a <- anova(res, red)
  list(sigma2_fixed = s2, lrt = a$LRT, pval = a$pval, sigma2_reduced = as.numeric(red$sigma2))
})
mod <- rma.mv(yi, vi, mods = ~ criterion, random = random, data = dat, method = "REML", test = "t")
wald <- Wald_test(mod, constraints = constrain_zero(2), vcov = "CR2", cluster = dat$studyid, test = "HTZ")
mod_year <- rma.mv(yi, vi, mods = ~ year, random = random, data = dat, method = "REML", test = "t")
save_json(list(
  dataset = "crede2010", source = "metadat::dat.crede2010", versions = versions,
  data_call = "effects: dat.crede2010 with esid = row number; studies: unique(studyid, year, source)",
  escalc = 'dat <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat)',
  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
  cases = list(
    overall = list(call = 'rma.mv(yi, vi, random = ~ 1 | studyid/sampleid/esid, data = dat, method = "REML", test = "t")',
                   results = model_out(res)),
    overall_cr2 = list(call = 'coef_test(res, vcov = "CR2", cluster = dat$studyid, test = "Satterthwaite"); conf_int(res, vcov = "CR2", cluster = dat$studyid)',
                       results = cr2_out(res, dat$studyid)),
    variance = list(call = "typical_v = (k - p) / tr(P), P = W - W X (X'WX)^-1 X'W, W = diag(1/vi); I2_l = 100 sigma2_l / (sum(sigma2) + typical_v)",
                    results = list(typical_v = typical_v, i2 = as.numeric(i2), i2_total = sum(i2))),
    level_lrt = list(call = "for each level l: reduced <- rma.mv(..., sigma2 = s2) with s2[l] = 0, others NA; anova(res, reduced)",
                     results = lrt),
    mods_criterion = list(call = 'rma.mv(yi, vi, mods = ~ criterion, random = ~ 1 | studyid/sampleid/esid, data = dat, method = "REML", test = "t")',
                          results = model_out(mod)),
    mods_criterion_cr2 = list(call = 'coef_test(mod, vcov = "CR2", cluster = dat$studyid, test = "Satterthwaite")',
                              results = cr2_out(mod, dat$studyid)),
    mods_criterion_wald_htz = list(call = 'Wald_test(mod, constraints = constrain_zero(2), vcov = "CR2", cluster = dat$studyid, test = "HTZ")',
                                   results = list(fstat = wald$Fstat, df_num = wald$df_num, df_denom = wald$df_denom, p_val = wald$p_val)),
    mods_year = list(call = 'rma.mv(yi, vi, mods = ~ year, random = ~ 1 | studyid/sampleid/esid, data = dat, method = "REML", test = "t")',
                     results = model_out(mod_year))
  )), "crede2010/reference.json")

# ------------------------------------------------------------------ bcg
dir.create("bcg", showWarnings = FALSE)
d <- dat.bcg
studies <- data.frame(trial = d$trial, author = d$author, year = d$year, ablat = d$ablat, alloc = d$alloc)
effects <- data.frame(es = paste0("T", d$trial), trial = d$trial, es_input = "counts_2x2",
                      tpos = d$tpos, tneg = d$tneg, cpos = d$cpos, cneg = d$cneg)
wcsv(studies, "bcg/studies.csv")
wcsv(effects, "bcg/effects.csv")
dat <- merge(read.csv("bcg/effects.csv"), read.csv("bcg/studies.csv"), by = "trial", sort = FALSE)
dat <- dat[order(dat$trial), ]
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)
res <- rma(yi, vi, data = dat, method = "REML", test = "t")
mod <- rma(yi, vi, mods = ~ ablat, data = dat, method = "REML", test = "t")
save_json(list(
  dataset = "bcg", source = "metadat::dat.bcg", versions = versions,
  data_call = "studies: trial, author, year, ablat, alloc; effects: es = paste0('T', trial), counts",
  escalc = 'dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)',
  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
  cases = list(
    overall = list(call = 'rma(yi, vi, data = dat, method = "REML", test = "t")', results = model_out(res)),
    overall_cr2 = list(call = 'coef_test(res, vcov = "CR2", cluster = dat$trial, test = "Satterthwaite"); conf_int(res, vcov = "CR2", cluster = dat$trial)',
                       results = cr2_out(res, dat$trial)),
    mods_ablat = list(call = 'rma(yi, vi, mods = ~ ablat, data = dat, method = "REML", test = "t")', results = model_out(mod)),
    mods_ablat_cr2 = list(call = 'coef_test(mod, vcov = "CR2", cluster = dat$trial, test = "Satterthwaite")',
                          results = cr2_out(mod, dat$trial))
  )), "bcg/reference.json")

# ------------------------------------------------------------------ normand1999
dir.create("normand1999", showWarnings = FALSE)
d <- dat.normand1999
studies <- data.frame(trial_code = sprintf("N%02d", d$study), setting = d$source)
effects <- data.frame(outcome_id = sprintf("N%02d-los", d$study), trial_code = sprintf("N%02d", d$study),
                      n_tx = d$n1i, mean_tx = d$m1i, sd_tx = d$sd1i,
                      n_cg = d$n2i, mean_cg = d$m2i, sd_cg = d$sd2i)
wcsv(studies, "normand1999/studies.csv")
wcsv(effects, "normand1999/effects.csv")
dat <- merge(read.csv("normand1999/effects.csv"), read.csv("normand1999/studies.csv"), by = "trial_code", sort = FALSE)
dat <- dat[order(dat$trial_code), ]
dat <- escalc(measure = "MD", m1i = mean_tx, sd1i = sd_tx, n1i = n_tx, m2i = mean_cg, sd2i = sd_cg, n2i = n_cg, data = dat)
res <- rma(yi, vi, data = dat, method = "REML", test = "t")
save_json(list(
  dataset = "normand1999", source = "metadat::dat.normand1999", versions = versions,
  data_call = "studies: trial_code = sprintf('N%02d', study), setting = source; effects: outcome_id, trial_code, renamed means/SDs/ns (tx = specialist care, cg = routine care)",
  escalc = 'dat <- escalc(measure = "MD", m1i = mean_tx, sd1i = sd_tx, n1i = n_tx, m2i = mean_cg, sd2i = sd_cg, n2i = n_cg, data = dat)',
  yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
  cases = list(
    overall = list(call = 'rma(yi, vi, data = dat, method = "REML", test = "t")', results = model_out(res)),
    overall_cr2 = list(call = 'coef_test(res, vcov = "CR2", cluster = dat$trial_code, test = "Satterthwaite"); conf_int(res, vcov = "CR2", cluster = dat$trial_code)',
                       results = cr2_out(res, dat$trial_code))
  )), "normand1999/reference.json")
