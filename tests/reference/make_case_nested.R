# Reference values from R for the nested and split-plot case study,
# book/12_case_nested.md, beyond those in lme4_more.json: Oats with nitrogen as
# a factor (lme4 fits, lmerTest's Satterthwaite t and F tests, and the test of
# the linear trend against the factor), the classical split-plot analysis of
# variance (aov with an Error() term: the strata's sums of squares), and for
# Machines the model (Machine | Worker), its likelihood-ratio test against
# (1 | Worker/Machine) and the classical two-stratum analysis of variance.
# Writes lme4_case_nested.json next to this script.
#
#   Rscript tests/reference/make_case_nested.R      (from the repository root)
#
# Data are read from data/ as in make_lme4_more.R (factor levels from
# data/levels.json, in R's order).

suppressMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
source(file.path(here, "load_data.R"))  # root, load_data(), TIGHT, record()

oats <- load_data("Oats")
oats$N <- factor(oats$nitro)            # nitrogen as a factor: 4 levels
machines <- load_data("Machines")

CASES <- list(
  list("oats_factor", "yield ~ N + Variety + (1 | Block/Variety)", "Oats"),
  list("oats_full", "yield ~ N * Variety + (1 | Block/Variety)", "Oats"),
  list("machines_full", "score ~ Machine + (Machine | Worker)", "Machines")
)
frames <- list(Oats = oats, Machines = machines)
fits <- list()
models <- list()
for (case in CASES) {
  for (reml in c(TRUE, FALSE)) {
    fm <- lmer(as.formula(case[[2]]), data = frames[[case[[3]]]], REML = reml,
               control = TIGHT)
    fits[[length(fits) + 1]] <- record(case[[1]], case[[2]], case[[3]], fm)
    models[[paste(case[[1]], reml)]] <- fm
    cat(case[[1]], reml, objective(fm), isSingular(fm), "\n")
  }
}

# lmerTest: Satterthwaite t tests and F tests (type III) of the factor models
satt <- list()
ftests <- list()
for (id in c("oats_factor", "oats_full")) {
  formula <- Filter(function(case) case[[1]] == id, CASES)[[1]][[2]]
  fm <- lmerTest::lmer(as.formula(formula), data = oats, control = TIGHT)
  ct <- coef(summary(fm))
  satt[[length(satt) + 1]] <- list(
    id = id, terms = rownames(ct), estimate = unname(ct[, "Estimate"]),
    stderr = unname(ct[, "Std. Error"]), df = unname(ct[, "df"]),
    p = unname(ct[, "Pr(>|t|)"]))
  at <- anova(fm)
  ftests[[length(ftests) + 1]] <- list(
    id = id, terms = rownames(at), F = unname(at[["F value"]]),
    NumDF = unname(at[["NumDF"]]), DenDF = unname(at[["DenDF"]]),
    p = unname(at[["Pr(>F)"]]))
}

# likelihood-ratio tests (ML): the linear trend against the factor; and
# (1 | Worker/Machine) against (Machine | Worker)
lin <- lmer(yield ~ nitro + Variety + (1 | Block/Variety), data = oats,
            REML = FALSE, control = TIGHT)
fac <- lmer(yield ~ N + Variety + (1 | Block/Variety), data = oats,
            REML = FALSE, control = TIGHT)
a1 <- anova(lin, fac)
nested <- lmer(score ~ Machine + (1 | Worker/Machine), data = machines,
               REML = FALSE, control = TIGHT)
full <- lmer(score ~ Machine + (Machine | Worker), data = machines,
             REML = FALSE, control = TIGHT)
a2 <- anova(nested, full)
lrt <- list(
  list(id = "oats_trend_vs_factor", npar = a1$npar, deviance = a1$deviance,
       Chisq = a1$Chisq[2], Df = a1$Df[2], p = a1$`Pr(>Chisq)`[2]),
  list(id = "machines_nested_vs_full", npar = a2$npar, deviance = a2$deviance,
       Chisq = a2$Chisq[2], Df = a2$Df[2], p = a2$`Pr(>Chisq)`[2]))

# the classical analyses of variance, strata by strata
strata_table <- function(model) {
  out <- list()
  for (stratum in names(summary(model))) {
    tab <- summary(model)[[stratum]][[1]]
    out[[stratum]] <- list(terms = trimws(rownames(tab)), Df = unname(tab$Df),
                           SS = unname(tab[["Sum Sq"]]),
                           MS = unname(tab[["Mean Sq"]]),
                           F = unname(tab[["F value"]]),
                           p = unname(tab[["Pr(>F)"]]))
  }
  out
}
aov_oats_full <- aov(yield ~ N * Variety + Error(Block/Variety), data = oats)
aov_oats_split <- aov(yield ~ nitro + Variety + Error(Block/Variety),
                      data = oats)
aov_machines <- aov(score ~ Machine + Error(Worker/Machine), data = machines)
anova_tables <- list(oats_full = strata_table(aov_oats_full),
                     oats_split = strata_table(aov_oats_split),
                     machines = strata_table(aov_machines))

out <- list(
  provenance = list(R = R.version.string,
                    lme4 = as.character(packageVersion("lme4")),
                    lmerTest = as.character(packageVersion("lmerTest")),
                    script = "tests/reference/make_case_nested.R",
                    date = format(Sys.Date()),
                    control = "nloptwrap, xtol_abs 1e-12, ftol_abs 1e-14"),
  fits = fits, satterthwaite = satt, ftests = ftests, lrt = lrt,
  aov = anova_tables)
write(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
      file.path(here, "lme4_case_nested.json"))
