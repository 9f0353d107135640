# Two small simulated vignette data sets for the model fixtures (deterministic: set.seed).
# Run from this folder: Rscript make_data.R   (writes vignette_a.csv, vignette_b.csv)
#
# vignette_a: 60 respondents (role: parent / professional / volunteer, 20 each), each rating 9 of
#   the 36 vignettes of a 4 (style) x 3 (behaviour) x 3 (location) full factorial, drawn without
#   replacement per respondent; a binary `respond` and a 5-point `responsibility`.
# vignette_b: a differently shaped study with other column names: 41 persons (group: other /
#   professional, unbalanced), each rating 3 to 6 of the 6 vignettes of a 3 (tone) x 2 (conduct)
#   design; a binary `helps` and a 4-point `likert`; rows not sorted by level.

set.seed(20261203)
logistic_draw <- function(eta) rbinom(length(eta), 1, plogis(eta))
ordinal_draw <- function(eta, cuts) {
  latent <- eta + rlogis(length(eta))
  as.integer(cut(latent, c(-Inf, cuts, Inf)))
}

# --- vignette_a ---
style <- c("authoritative", "authoritarian", "permissive", "uninvolved")
behaviour <- c("prosocial", "externalising", "internalising")
location <- c("street", "school", "community_centre")
role <- c("parent", "professional", "volunteer")
grid <- expand.grid(style = style, behaviour = behaviour, location = location,
                    stringsAsFactors = FALSE)
rows <- list()
for (i in 1:60) {
  r <- role[(i - 1) %/% 20 + 1]
  pick <- grid[sample(nrow(grid), 9), ]
  rows[[i]] <- data.frame(respondent = sprintf("R%03d", i), role = r, pick,
                          stringsAsFactors = FALSE)
}
a <- do.call(rbind, rows)
u1 <- rnorm(60, 0, 1.0)[as.integer(factor(a$respondent))]
u2 <- rnorm(60, 0, 0.8)[as.integer(factor(a$respondent))]
b_style <- c(authoritative = 0, authoritarian = 0.3, permissive = 0.9, uninvolved = 0.5)
b_beh <- c(prosocial = 0, externalising = 0.8, internalising = 0.3)
b_loc <- c(street = 0, school = 0.2, community_centre = -0.1)
b_role <- c(parent = 0, professional = 0.1, volunteer = -0.2)
inter <- ifelse(a$role == "professional" & a$style == "permissive", -0.5, 0)
eta <- -0.6 + b_style[a$style] + b_beh[a$behaviour] + b_loc[a$location] + b_role[a$role] +
  inter + u1
a$respond <- logistic_draw(eta)
eta2 <- b_style[a$style] * 0.6 + b_beh[a$behaviour] + 0.7 * (a$role == "professional") + u2
a$responsibility <- ordinal_draw(eta2, c(-1.2, 0, 1, 2.2))
rownames(a) <- NULL
write.csv(a, "vignette_a.csv", row.names = FALSE)

# --- vignette_b ---
tone <- c("warm", "harsh", "neutral")
conduct <- c("calm", "disruptive")
grid_b <- expand.grid(tone = tone, conduct = conduct, stringsAsFactors = FALSE)
rows <- list()
for (i in 1:41) {
  g <- if (i <= 14) "professional" else "other"
  pick <- grid_b[sample(nrow(grid_b), sample(3:6, 1)), ]
  rows[[i]] <- data.frame(pid = sprintf("p%02d", i), group = g, pick, stringsAsFactors = FALSE)
}
b <- do.call(rbind, rows)
v1 <- rnorm(41, 0, 0.9)[as.integer(factor(b$pid))]
v2 <- rnorm(41, 0, 0.7)[as.integer(factor(b$pid))]
eta <- 0.2 + c(warm = 0, harsh = 0.7, neutral = 0.2)[b$tone] + 0.6 * (b$conduct == "disruptive") -
  0.3 * (b$group == "professional") + 0.5 * (b$group == "professional") * (b$conduct == "disruptive") + v1
b$helps <- logistic_draw(eta)
eta2 <- c(warm = 0, harsh = 0.5, neutral = 0.1)[b$tone] + 0.4 * (b$conduct == "disruptive") + v2
b$likert <- ordinal_draw(eta2, c(-0.8, 0.4, 1.5))
rownames(b) <- NULL
write.csv(b, "vignette_b.csv", row.names = FALSE)
