# Extra references for the component profiles (src/intervention_meta/analyses/components.py): the
# study-level estimates of the three-level model that the `blup` positive rule uses.
# Usage (from the reference folder, tests/reference):  Rscript extra/components_reference.R
# Reads ../assink2016.csv, writes extra/components_reference.json.
# R 4.2.2, metafor 3.8-1; helpers (run_case) from R/common.R.
#
# Cases (every call evaluated verbatim with `dat` = read.csv("../assink2016.csv"))
#   ranef_study    res <- rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, test="t");
#                  ranef(res)$study: the BLUP of each study's random effect u_j with the square
#                  root of its prediction-error variance Var(u_j - u_hat_j) (metafor: D - D Z'P Z D)
#                  and metafor's prediction interval (t with k - p df for test="t")
#   study_level_mme  the study-level estimate mu_hat + u_hat_j of the same model and its
#                  prediction-error variance Var(mu_hat + u_hat_j - mu - u_j), computed
#                  independently of metafor's formulas from Henderson's mixed-model equations
#                  (Henderson 1975): C = [X'R^-1 X, X'R^-1 Z; Z'R^-1 X, Z'R^-1 Z + G^-1] with
#                  R = diag(vi), Z = [study indicators, identity] and G = diag(sigma2) at
#                  metafor's REML estimates; estimate = l'C^-1 [X'R^-1 y; Z'R^-1 y], PEV = l'C^-1 l
#                  with l = (1, e_j, 0). Studies in the order of sort(unique(dat$study)).

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "..", "R", "common.R"))

csv <- normalizePath(file.path(here, "..", "assink2016.csv"))
dat <- read.csv(csv, stringsAsFactors = FALSE)
S <- new_store()

ext_ranef <- function(x, env = NULL) {
  r <- x$study
  list(study = arr(rownames(r)), blup = num(r$intrcpt), se = num(r$se),
       pi_lb = num(r$pi.lb), pi_ub = num(r$pi.ub))
}
ext_mme <- function(x, env = NULL) {
  list(study = arr(x$study), estimate = num(x$estimate), pev = num(x$pev),
       b = num(x$b), sigma2 = num(x$sigma2))
}

fit <- 'res <- rma.mv(yi, vi, random = ~ 1 | study/esid, data=dat, test="t")'
run_case(S, "ranef_study", paste0(fit, "; ranef(res)"), ext_ranef, dat)
mme <- paste0(fit, "; ",
  "s <- sort(unique(dat$study)); k <- nrow(dat); ",
  "X <- matrix(1, k, 1); Zs <- outer(dat$study, s, `==`) * 1; Z <- cbind(Zs, diag(k)); ",
  "Ri <- diag(1 / dat$vi); G <- diag(c(rep(res$sigma2[1], length(s)), rep(res$sigma2[2], k))); ",
  "C <- rbind(cbind(t(X) %*% Ri %*% X, t(X) %*% Ri %*% Z), cbind(t(Z) %*% Ri %*% X, t(Z) %*% Ri %*% Z + solve(G))); ",
  "Ci <- solve(C); sol <- Ci %*% rbind(t(X) %*% Ri %*% dat$yi, t(Z) %*% Ri %*% dat$yi); ",
  "L <- rbind(1, diag(length(s)), matrix(0, k, length(s))); ",
  "list(study=s, estimate=drop(t(L) %*% sol), pev=diag(t(L) %*% Ci %*% L), b=sol[1], sigma2=res$sigma2)")
run_case(S, "study_level_mme", mme, ext_mme, dat)

out <- list(versions = versions(), dataset = "assink2016", csv = "../assink2016.csv",
            cases = S$cases, failures = S$failures)
jsonlite::write_json(out, file.path(here, "components_reference.json"),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
message(sprintf("%d cases, %d failures", length(S$cases), length(S$failures)))
