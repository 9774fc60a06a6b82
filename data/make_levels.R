# Factor level orders of the book's data sets as R has them, for lmm_ref.data.load
# (a CSV keeps no level order).  Writes data/levels.json.
#   Rscript data/make_levels.R        (from the repository root; R 4.2.2, lme4 1.1-31, nlme)
suppressMessages({library(lme4); library(nlme); library(jsonlite)})
sets <- list(sleepstudy = lme4::sleepstudy, Dyestuff = lme4::Dyestuff, Dyestuff2 = lme4::Dyestuff2,
             Penicillin = lme4::Penicillin, Pastes = lme4::Pastes, InstEval = lme4::InstEval,
             ChickWeight = datasets::ChickWeight, Orthodont = nlme::Orthodont, Oats = nlme::Oats,
             Machines = nlme::Machines)
sets$sleepstudy_unbalanced <- sets$sleepstudy   # the same factor, 30 rows fewer
out <- lapply(sets, function(d) {
  factors <- Filter(is.factor, as.list(d))
  lapply(factors, function(x) list(levels = levels(x), ordered = is.ordered(x)))
})
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "data/levels.json")
