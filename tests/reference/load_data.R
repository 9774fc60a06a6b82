# Shared by the case-study scripts (make_case_*.R): the data of data/ with R's factor
# levels from data/levels.json, as make_lme4_more.R reads them; the tight stopping rule
# TIGHT and record(), what each script stores of a fit.  Needs `here`, the folder of
# the calling script, jsonlite and lme4.
root <- normalizePath(file.path(here, "..", ".."))
levels_json <- fromJSON(file.path(root, "data", "levels.json"),
                        simplifyVector = FALSE)

load_data <- function(name) {
  d <- read.csv(file.path(root, "data", paste0(name, ".csv")),
                stringsAsFactors = FALSE)
  spec <- levels_json[[name]]
  for (column in names(spec)) {
    lev <- unlist(spec[[column]]$levels)
    d[[column]] <- factor(as.character(d[[column]]), levels = lev,
                          ordered = isTRUE(spec[[column]]$ordered))
  }
  d
}

# The fits' shared settings and record.  A tight stopping rule for lme4's default
# optimiser (nloptwrap's BOBYQA):
TIGHT <- lmerControl(optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14,
                                    xtol_rel = 1e-12, ftol_rel = 1e-15,
                                    maxeval = 1e5))

objective <- function(fm) if (isREML(fm)) REMLcrit(fm) else deviance(fm)

record <- function(id, formula, data_name, fm) {
  list(id = id, formula = formula, dataset = data_name, reml = isREML(fm),
       objective = objective(fm), fixef = as.list(fixef(fm)),
       stderr = as.list(sqrt(diag(as.matrix(vcov(fm))))),
       theta = unname(getME(fm, "theta")), sigma = sigma(fm),
       sdcor = as.data.frame(VarCorr(fm))$sdcor,
       singular = isSingular(fm), feval = fm@optinfo$feval,
       AIC = AIC(fm), BIC = BIC(fm))
}
