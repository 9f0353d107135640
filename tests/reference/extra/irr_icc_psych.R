# ICC(2,1) of the Shrout & Fleiss (1979, Table 2) example (6 targets x 4 judges), by psych::ICC.
# Run: Rscript irr_icc_psych.R  (R 4.2.2, psych 2.2.9, Debian r-cran-psych) -> irr_icc_psych.json
suppressPackageStartupMessages({library(psych); library(jsonlite)})
sf <- matrix(c(9,2,5,8, 6,1,3,2, 8,4,6,8, 7,1,2,6, 10,5,6,9, 6,2,4,7), ncol = 4, byrow = TRUE)
call <- "ICC(sf, lmer = FALSE)$results['Single_random_raters', ]"
r <- eval(parse(text = call))
out <- list(
  source = "Shrout & Fleiss (1979) Table 2; psych::ICC (McGraw & Wong 1996 CI)",
  versions = list(r = R.version.string, psych = as.character(packageVersion("psych"))),
  data = sf,
  call = call,
  results = list(icc = r$ICC, f = r$F, df1 = r$df1, df2 = r$df2, p = r$p,
                 ci_lower = r$`lower bound`, ci_upper = r$`upper bound`)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "irr_icc_psych.json")
