# Reference values from lme4 (and nlme) for the growth-curve case study,
# book/10_case_growth.md, beyond those in lme4_more.json: the case-study models
# refitted with a tight optimiser (lme4's default stopping rule leaves
# orthodont_slope's theta about 1e-3 from the minimum, where the REML criterion
# is flat), the Orthodont models with age centred at 8 and at 11, ChickWeight on
# the log scale, and nlme's variance-function fits of ChickWeight, which lme4
# cannot express.  Writes lme4_case_growth.json next to this script.
#
#   Rscript tests/reference/make_case_growth.R      (from the repository root)
#
# Data are read from data/ as in make_lme4_more.R (factor levels from
# data/levels.json, in R's order).

suppressMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(nlme, exclude = "lmList")
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
source(file.path(here, "load_data.R"))  # root, load_data(), TIGHT, record()

orthodont <- load_data("Orthodont")
orthodont$age8 <- orthodont$age - 8
orthodont$age11 <- orthodont$age - 11
chick <- load_data("ChickWeight")
chick$logweight <- log(chick$weight)

CASES <- list(
  list("orthodont_slope", "distance ~ age * Sex + (age | Subject)", "Orthodont"),
  list("orthodont_zerocorr", "distance ~ age * Sex + (age || Subject)", "Orthodont"),
  list("orthodont_slope_age8", "distance ~ age8 * Sex + (age8 | Subject)", "Orthodont"),
  list("orthodont_slope_age11", "distance ~ age11 * Sex + (age11 | Subject)", "Orthodont"),
  list("orthodont_zerocorr_age11", "distance ~ age11 * Sex + (age11 || Subject)", "Orthodont"),
  list("chick_slope", "weight ~ Time * Diet + (Time | Chick)", "ChickWeight"),
  list("chick_zerocorr", "weight ~ Time * Diet + (Time || Chick)", "ChickWeight"),
  list("chick_main", "weight ~ Time + Diet + (Time | Chick)", "ChickWeight"),
  list("chick_log", "logweight ~ Time * Diet + (Time | Chick)", "ChickWeight")
)
frames <- list(Orthodont = orthodont, ChickWeight = chick)

fits <- list()
for (case in CASES) {
  for (reml in c(TRUE, FALSE)) {
    fm <- lmer(as.formula(case[[2]]), data = frames[[case[[3]]]], REML = reml,
               control = TIGHT)
    fits[[length(fits) + 1]] <- record(case[[1]], case[[2]], case[[3]], fm)
    cat(case[[1]], reml, objective(fm), "\n")
  }
}

# Satterthwaite for the log-scale model (lmerTest)
fm_log <- lmerTest::lmer(logweight ~ Time * Diet + (Time | Chick), data = chick,
                         control = TIGHT)
ct <- coef(summary(fm_log))
satt_log <- list(id = "chick_log", terms = rownames(ct),
                 estimate = unname(ct[, "Estimate"]), df = unname(ct[, "df"]),
                 p = unname(ct[, "Pr(>|t|)"]))

# nlme: the same model with constant variance, and with a variance that grows
# as a power of the fitted value (varPower), by REML
ctrl <- lmeControl(maxIter = 200, msMaxIter = 200, opt = "optim")
lme_const <- lme(weight ~ Time * Diet, random = ~ Time | Chick, data = chick,
                 method = "REML", control = ctrl)
lme_power <- lme(weight ~ Time * Diet, random = ~ Time | Chick, data = chick,
                 method = "REML", weights = varPower(form = ~ fitted(.)),
                 control = ctrl)
cmp <- anova(lme_const, lme_power)
nlme_rec <- list(
  loglik_const = as.numeric(logLik(lme_const)),
  loglik_power = as.numeric(logLik(lme_power)),
  power = unname(coef(lme_power$modelStruct$varStruct, unconstrained = FALSE)),
  sigma_power = lme_power$sigma,
  fixef_power = as.list(fixef(lme_power)),
  lrt = cmp$L.Ratio[2], lrt_p = cmp$`p-value`[2],
  AIC = cmp$AIC, BIC = cmp$BIC)

out <- list(
  provenance = list(R = R.version.string,
                    lme4 = as.character(packageVersion("lme4")),
                    lmerTest = as.character(packageVersion("lmerTest")),
                    nlme = as.character(packageVersion("nlme")),
                    script = "tests/reference/make_case_growth.R",
                    date = format(Sys.Date()),
                    control = "nloptwrap, xtol_abs 1e-12, ftol_abs 1e-14"),
  fits = fits, satterthwaite = list(satt_log), nlme = nlme_rec)
write(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
      file.path(here, "lme4_case_growth.json"))
