# lme4 reference values for the chapter "Case study: crossed factors"
# (book/11_case_crossed.md) that lme4_more.json does not hold: InstEval with a
# service effect that varies by department, its likelihood-ratio test against
# the chapter's main model, and the departments' conditional modes.
# Writes lme4_case_crossed.json next to this script.
#
#   Rscript tests/reference/make_case_crossed.R        (from the repository root)
#
# R, lme4 and jsonlite from Debian's packages (r-base-core, r-cran-lme4,
# r-cran-jsonlite), as for make_lme4_more.R.  Data are read from data/ with R's
# factor levels from data/levels.json, as lmm_ref.data.load does.  Both fits are
# by maximum likelihood (the test compares models with the same fixed effects,
# but ML keeps the table comparable with lme4_more.json's "insteval" fit).

suppressMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
source(file.path(here, "load_data.R"))  # root, load_data()

inst <- load_data("InstEval")

fit_summary <- function(fm, seconds) {
  vc <- as.data.frame(VarCorr(fm))
  list(formula = paste(deparse(formula(fm)), collapse = ""),
       reml = isREML(fm), nobs = nobs(fm), objective = deviance(fm),
       loglik = as.numeric(logLik(fm)), AIC = AIC(fm), BIC = BIC(fm),
       fixef = as.list(fixef(fm)),
       stderr = as.list(setNames(sqrt(diag(as.matrix(vcov(fm)))),
                                 names(fixef(fm)))),
       theta = unname(getME(fm, "theta")),
       theta_names = names(getME(fm, "theta")),
       sigma = sigma(fm),
       varcorr = list(grp = vc$grp, var1 = vc$var1,
                      var2 = ifelse(is.na(vc$var2), "", vc$var2),
                      sdcor = vc$sdcor),
       singular = isSingular(fm), feval = fm@optinfo$feval,
       seconds = seconds)
}

t0 <- system.time(
  m0 <- lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept), inst, REML = FALSE)
)[["elapsed"]]
t1 <- system.time(
  m1 <- lmer(y ~ service + (1 | s) + (1 | d) + (1 + service | dept), inst,
             REML = FALSE)
)[["elapsed"]]
a <- anova(m0, m1)
re_dept <- ranef(m1)$dept

out <- list(
  provenance = list(R = R.version.string,
                    lme4 = packageDescription("lme4")$Version,
                    Matrix = packageDescription("Matrix")$Version,
                    script = "tests/reference/make_case_crossed.R",
                    date = format(Sys.Date())),
  fits = list(insteval = fit_summary(m0, t0),
              insteval_service_dept = fit_summary(m1, t1)),
  anova = list(id = "insteval_service_dept", npar = a$npar, AIC = a$AIC,
               BIC = a$BIC, logLik = a$logLik, deviance = a$deviance,
               Chisq = a$Chisq, Df = a$Df, p = a[["Pr(>Chisq)"]]),
  ranef_dept = list(levels = rownames(re_dept),
                    intercept = re_dept[["(Intercept)"]],
                    service1 = re_dept[["service1"]])
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null",
                  na = "null", pretty = FALSE),
           file.path(here, "lme4_case_crossed.json"))
