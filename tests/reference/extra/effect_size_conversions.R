# Check values for the effect-size conversions that metafor 3.8 does not offer (or offers only in
# part): d from a two-sided p, from F(1, df), from r (Borenstein et al. 2009, eq. 7.5/7.6), a
# reported d/g with SE or 95% CI, OR with 95% CI -> d (logit), the pre-post-control d_ppc2 of
# Morris (2008) on his five example studies, and the cluster design effect.
# Usage (from the reference folder, tests/reference):  Rscript extra/effect_size_conversions.R
# Writes extra/effect_size_conversions.json. R 4.2.2, metafor 3.8-1.
#
# Each case stores its inputs, the exact R code that produced the results (evaluated verbatim with
# the inputs as variables) and the results yi / vi. Where metafor has the last step (escalc with
# ti=, measure "SMD", vtype "LS"), it is used; everything else is written out in base R.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
out <- list(versions = list(r = R.version.string, metafor = as.character(packageVersion("metafor"))),
            cases = list())
run <- function(name, call, inputs, source = NULL) {
  env <- list2env(inputs, envir = new.env(parent = globalenv()))
  res <- eval(parse(text = call), envir = env)
  case <- list(call = call, inputs = inputs,
               results = list(yi = as.numeric(res$yi), vi = as.numeric(res$vi)))
  if (!is.null(source)) case$source <- source
  out$cases[[name]] <<- case
}

# 1. two-sided p with a sign -> t with df = n1 + n2 - 2 -> SMD (Hedges' g, exact J, vtype LS)
run("smd_from_p",
    'ti <- direction * qt(p / 2, df = n1i + n2i - 2, lower.tail = FALSE); escalc(measure = "SMD", ti = ti, n1i = n1i, n2i = n2i)',
    list(p = c(0.03, 0.2, 0.0004, 0.75), n1i = c(20, 35, 50, 12), n2i = c(22, 30, 48, 15),
         direction = c(1, -1, 1, -1)),
    "Lipsey & Wilson (2001), Table B10: t from an exact p; Borenstein et al. (2009), ch. 4 / 7")

# 2. F(1, df) with a sign -> t = sign * sqrt(F) -> SMD
run("smd_from_f",
    'ti <- direction * sqrt(Fi); escalc(measure = "SMD", ti = ti, n1i = n1i, n2i = n2i)',
    list(Fi = c(4.41, 1.69, 12.25, 0.16, 0), n1i = c(20, 35, 50, 12, 10), n2i = c(22, 30, 48, 15, 10),
         direction = c(1, -1, 1, -1, 1)),
    "Lipsey & Wilson (2001), Table B10: t = sqrt(F) for F(1, df)")

# 3. r with total N -> d (Borenstein et al. 2009, eq. 7.5 and 7.6), without and with exact J (df = N - 2)
run("smd_from_r_borenstein",
    'di <- 2 * ri / sqrt(1 - ri^2); vr <- (1 - ri^2)^2 / (ni - 1); list(yi = di, vi = 4 * vr / (1 - ri^2)^3)',
    list(ri = c(0.5, 0.1, -0.35, 0.8), ni = c(100, 50, 30, 12)),
    "Borenstein et al. (2009), eq. 7.5 (d = 2r/sqrt(1-r^2)) and 7.6 (V_d = 4 V_r / (1-r^2)^3), V_r = (1-r^2)^2/(n-1) (eq. 6.1)")
run("smd_from_r_hedges_j",
    'di <- 2 * ri / sqrt(1 - ri^2); vr <- (1 - ri^2)^2 / (ni - 1); vd <- 4 * vr / (1 - ri^2)^3; cm <- metafor:::.cmicalc(ni - 2); list(yi = cm * di, vi = cm^2 * vd)',
    list(ri = c(0.5, 0.1, -0.35, 0.8), ni = c(100, 50, 30, 12)))

# 4. reported Cohen's d with SE (J applied, df = n1 + n2 - 2) and with a 95% CI
run("smd_from_d_se_cohen",
    'cm <- metafor:::.cmicalc(n1i + n2i - 2); list(yi = cm * di, vi = cm^2 * sei^2)',
    list(di = c(0.45, -0.2, 1.1), sei = c(0.21, 0.3, 0.4), n1i = c(40, 20, 12), n2i = c(45, 25, 14)),
    "Borenstein et al. (2009), eq. 4.22-4.24: g = J d, V_g = J^2 V_d")
run("smd_from_d_ci_cohen",
    'sei <- (ub - lb) / (2 * qnorm(0.975)); cm <- metafor:::.cmicalc(n1i + n2i - 2); list(yi = cm * di, vi = cm^2 * sei^2)',
    list(di = c(0.45, -0.2, 1.1), lb = c(0.04, -0.79, 0.32), ub = c(0.86, 0.39, 1.88),
         n1i = c(40, 20, 12), n2i = c(45, 25, 14)),
    "Cochrane Handbook (v6.4) 6.3.1: SE = (upper - lower) / 3.92 for a 95% CI")

# 5. odds ratio with 95% CI -> log OR (Wald) -> d by the logit method (as metafor OR2DL)
run("smd_from_or_ci_logit",
    'lor <- log(or); vlor <- ((log(ci_ub) - log(ci_lb)) / (2 * qnorm(0.975)))^2; list(yi = sqrt(3) / pi * lor, vi = 3 / pi^2 * vlor)',
    list(or = c(1.8, 0.6, 2.5), ci_lb = c(1.1, 0.35, 0.9), ci_ub = c(2.95, 1.03, 6.9)),
    "Hasselblad & Hedges (1995); Borenstein et al. (2009), eq. 7.1/7.2")

# 6. Morris (2008) d_ppc2 on his five example studies (Carlson & Schmidt 1999; Morris 2008, Table 5;
#    data as on metafor-project.org/doku.php/analyses:morris2008). Pooled pretest SD, difference in
#    pre-post change; variance Morris (2008) eq. 25 with delta replaced by the estimate.
morris <- list(
  m_pre_t = c(30.6, 23.5, 0.5, 53.4, 35.6), m_post_t = c(38.5, 26.8, 0.7, 75.9, 36.0),
  sd_pre_t = c(15.0, 3.1, 0.1, 14.5, 4.7), n_t = c(20, 50, 9, 10, 14),
  m_pre_c = c(23.1, 24.9, 0.6, 55.7, 34.8), m_post_c = c(19.7, 25.3, 0.6, 60.7, 33.4),
  sd_pre_c = c(13.8, 4.1, 0.2, 17.3, 3.1), n_c = c(20, 42, 9, 11, 14),
  ri = c(0.47, 0.64, 0.77, 0.89, 0.44))
ppc2 <- 'N <- n_t + n_c; sdp <- sqrt(((n_t - 1) * sd_pre_t^2 + (n_c - 1) * sd_pre_c^2) / (N - 2)); d <- ((m_post_t - m_pre_t) - (m_post_c - m_pre_c)) / sdp; %s; yi <- cp * d; vi <- 2 * cp^2 * (1 - ri) * (N / (n_t * n_c)) * ((N - 2) / (N - 4)) * (1 + yi^2 / (2 * (1 - ri) * (N / (n_t * n_c)))) - yi^2; list(yi = yi, vi = vi)'
run("morris2008_dppc2_approx_cp", sprintf(ppc2, "cp <- 1 - 3 / (4 * (N - 2) - 1)"), morris,
    "Morris (2008), eq. 8-10 (d_ppc2, c_P = 1 - 3/(4(nT+nC-2)-1)) and eq. 25 (variance); Table 5")
run("morris2008_dppc2_exact_j", sprintf(ppc2, "cp <- metafor:::.cmicalc(N - 2)"), morris,
    "as morris2008_dppc2_approx_cp with the exact J (gamma functions) in place of c_P")

# 7. cluster design effect 1 + (m - 1) ICC on the variance of an SMD from means/SDs
run("design_effect_smd",
    'res <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i); list(yi = res$yi, vi = res$vi * (1 + (m - 1) * icc))',
    list(m1i = c(10.2, 8.1, 25), sd1i = c(2.1, 3, 6), n1i = c(60, 120, 200), m2i = c(9, 8.9, 23),
         sd2i = c(2.4, 2.7, 5.5), n2i = c(58, 110, 210), m = c(20, 12.5, 1), icc = c(0.05, 0.1, 0.3)),
    "Cochrane Handbook (v6.4) 23.1.4; Hedges (2007): variance times 1 + (m - 1) ICC")

# 8. zero cells with metafor's defaults (add = 1/2, to = "only0", drop00 = FALSE): no events in either
#    group, events in every participant of both groups, one zero cell, and a table without zeros
run("or_zero_and_double_zero",
    'escalc(measure = "OR", ai = ai, bi = bi, ci = ci, di = di)',
    list(ai = c(0, 12, 0, 7), bi = c(20, 0, 10, 13), ci = c(0, 9, 5, 4), di = c(25, 0, 5, 16)))
run("or2dl_zero_and_double_zero",
    'escalc(measure = "OR2DL", ai = ai, bi = bi, ci = ci, di = di)',
    list(ai = c(0, 12, 0, 7), bi = c(20, 0, 10, 13), ci = c(0, 9, 5, 4), di = c(25, 0, 5, 16)))

# 9. Borenstein et al. (2009), ch. 4 worked example (X1 = 103, X2 = 100, S1 = 5.5, S2 = 4.5, n = 50 + 50)
run("borenstein2009_ch4_ls",
    'escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, vtype = "LS")',
    list(m1i = 103, sd1i = 5.5, n1i = 50, m2i = 100, sd2i = 4.5, n2i = 50),
    "Borenstein et al. (2009), ch. 4, pp. 26-28: d = 0.5970, V_d = 0.0418, J = 0.9923, g = 0.5924, V_g = 0.0411")
run("borenstein2009_ch4_ls2",
    'escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, vtype = "LS2")',
    list(m1i = 103, sd1i = 5.5, n1i = 50, m2i = 100, sd2i = 4.5, n2i = 50),
    "as borenstein2009_ch4_ls; vtype LS2 = J^2 (1/n1 + 1/n2 + d^2 / (2 (n1 + n2))), Borenstein's V_g")

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
write_json(out, file.path(here, "effect_size_conversions.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
