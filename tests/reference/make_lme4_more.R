# Reference values from lme4 1.1-31 (lmerTest 3.1.3, pbkrtest 0.5.2) for the cases the
# shared reference files do not cover: the unbalanced sleep study, prior weights and
# offsets, conditional variances, predictions, anova, profile and Wald intervals,
# Satterthwaite and Kenward-Roger degrees of freedom, a parametric bootstrap, and the
# case-study models.  Writes lme4_more.json next to this script.
#
#   Rscript tests/reference/make_lme4_more.R        (from the repository root)
#
# R and the packages come from Debian (apt-get install r-base-core r-cran-lme4
# r-cran-lmertest r-cran-pbkrtest r-cran-jsonlite); the project itself never needs R.
# Data are read from data/ (the same CSV files the book uses); factor levels are set in
# R's order from data/levels.json, as lmm_ref.data.load does.

suppressMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")   # lmerTest::lmer is called explicitly
  library(pbkrtest)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
root <- normalizePath(file.path(here, "..", ".."))
levels_json <- fromJSON(file.path(root, "data", "levels.json"), simplifyVector = FALSE)

load_data <- function(name) {
  d <- read.csv(file.path(root, "data", paste0(name, ".csv")), stringsAsFactors = FALSE)
  spec <- levels_json[[name]]
  for (column in names(spec)) {
    lev <- unlist(spec[[column]]$levels)
    d[[column]] <- factor(as.character(d[[column]]), levels = lev, ordered = isTRUE(spec[[column]]$ordered))
  }
  d
}

DATA <- list()
for (name in c("sleepstudy", "sleepstudy_unbalanced", "Dyestuff", "Dyestuff2", "Penicillin",
               "Pastes", "Orthodont", "ChickWeight", "Oats", "Machines", "InstEval")) {
  DATA[[name]] <- load_data(name)
}
# derived columns: prior weights and offsets (the same expressions are in the tests)
DATA$sleepstudy$w <- 1 + DATA$sleepstudy$Days %% 3
DATA$sleepstudy$o <- 2 * DATA$sleepstudy$Days
DATA$sleepstudy_unbalanced$w <- 1 + DATA$sleepstudy_unbalanced$Days %% 3
DATA$sleepstudy_unbalanced$o <- 0.5 * DATA$sleepstudy_unbalanced$Days
DATA$Penicillin$w <- 1 + (seq_len(nrow(DATA$Penicillin)) %% 4) / 2
DATA$Dyestuff$w <- c(1, 2, 3, 4, 5)[(seq_len(30) - 1) %% 5 + 1]

objective <- function(fm) if (isREML(fm)) REMLcrit(fm) else deviance(fm)

varcorr_list <- function(fm) {
  vc <- as.data.frame(VarCorr(fm))
  out <- list()
  for (g in unique(vc$grp)) {
    rows <- vc[vc$grp == g, ]
    sds <- rows[is.na(rows$var2), ]
    cors <- rows[!is.na(rows$var2), ]
    sd_names <- ifelse(is.na(sds$var1), g, sds$var1)
    out[[g]] <- list(sd = as.list(setNames(sds$sdcor, sd_names)),
                     cor = if (nrow(cors)) as.list(setNames(cors$sdcor, paste(cors$var1, cors$var2, sep = ":"))) else NULL)
  }
  out
}

ranef_list <- function(fm) {
  re <- ranef(fm)
  lapply(re, function(t) list(levels = rownames(t), values = as.list(t)))
}

fit_model <- function(dataset, formula, reml, weights = NULL) {
  # the call names DATA[[dataset]] itself, so that anova() can tell the models share data
  call <- if (is.null(weights)) bquote(lmer(.(as.formula(formula)), data = DATA[[.(dataset)]], REML = .(reml)))
          else bquote(lmer(.(as.formula(formula)), data = DATA[[.(dataset)]], REML = .(reml),
                           weights = DATA[[.(dataset)]][[.(weights)]]))
  eval(call)
}

fit_record <- function(fm, id, dataset, formula, reml, weights = NULL) {
  list(id = id, dataset = dataset, formula = formula, reml = reml, weights = weights,
       nobs = nobs(fm), objective = objective(fm), loglik = as.numeric(logLik(fm)),
       fixef = as.list(fixef(fm)), stderr = as.list(sqrt(diag(as.matrix(vcov(fm))))),
       theta = unname(getME(fm, "theta")), theta_names = names(getME(fm, "theta")),
       sigma = sigma(fm), varcorr = varcorr_list(fm), singular = isSingular(fm),
       feval = fm@optinfo$feval, ranef = ranef_list(fm),
       AIC = AIC(fm), BIC = BIC(fm))
}

FITS <- list(
  # the unbalanced sleep study: GLS differs from OLS, shrinkage differs by subject
  list("unb_slope", "sleepstudy_unbalanced", "Reaction ~ Days + (Days | Subject)"),
  list("unb_int", "sleepstudy_unbalanced", "Reaction ~ Days + (1 | Subject)"),
  list("unb_zerocorr", "sleepstudy_unbalanced", "Reaction ~ Days + (Days || Subject)"),
  # prior weights and offsets
  list("sleep_w", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "w"),
  list("sleep_o", "sleepstudy", "Reaction ~ Days + offset(o) + (Days | Subject)"),
  list("sleep_wo", "sleepstudy", "Reaction ~ Days + offset(o) + (Days | Subject)", "w"),
  list("unb_wo", "sleepstudy_unbalanced", "Reaction ~ Days + offset(o) + (Days | Subject)", "w"),
  list("penicillin_w", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "w"),
  list("dyestuff_w", "Dyestuff", "Yield ~ 1 + (1 | Batch)", "w"),
  # case studies
  list("orthodont_slope", "Orthodont", "distance ~ age * Sex + (age | Subject)"),
  list("orthodont_zerocorr", "Orthodont", "distance ~ age * Sex + (age || Subject)"),
  list("orthodont_int", "Orthodont", "distance ~ age * Sex + (1 | Subject)"),
  list("orthodont_additive", "Orthodont", "distance ~ age + Sex + (1 | Subject)"),
  list("chick_slope", "ChickWeight", "weight ~ Time * Diet + (Time | Chick)"),
  list("chick_zerocorr", "ChickWeight", "weight ~ Time * Diet + (Time || Chick)"),
  list("chick_main", "ChickWeight", "weight ~ Time + Diet + (Time | Chick)"),
  list("oats_split", "Oats", "yield ~ nitro + Variety + (1 | Block/Variety)"),
  list("oats_block", "Oats", "yield ~ nitro + Variety + (1 | Block)"),
  list("oats_interaction", "Oats", "yield ~ nitro * Variety + (1 | Block/Variety)"),
  list("machines_nested", "Machines", "score ~ Machine + (1 | Worker/Machine)"),
  list("machines_worker", "Machines", "score ~ Machine + (1 | Worker)"),
  list("machines_slope", "Machines", "score ~ Machine + (0 + Machine | Worker)"),
  list("penicillin_plate", "Penicillin", "diameter ~ 1 + (1 | plate)"),
  list("insteval", "InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept)")
)

fits <- list()
models <- list()
for (case in FITS) {
  for (reml in c(TRUE, FALSE)) {
    if (case[[1]] == "insteval" && reml) next   # one large fit is enough (about 45 s)
    weights <- if (length(case) >= 4) case[[4]] else NULL
    fm <- fit_model(case[[2]], case[[3]], reml, weights)
    record <- fit_record(fm, case[[1]], case[[2]], case[[3]], reml, weights)
    fits[[length(fits) + 1]] <- record
    models[[paste(case[[1]], reml)]] <- fm
    cat(case[[1]], reml, record$objective, "\n")
  }
}
model <- function(id, reml = TRUE) models[[paste(id, reml)]]

# the shared reference's models, for the inference sections
shared <- list(
  sleep_slope = "Reaction ~ Days + (Days | Subject)", sleep_int = "Reaction ~ Days + (1 | Subject)",
  sleep_zerocorr = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
  dyestuff = "Yield ~ 1 + (1 | Batch)", penicillin = "diameter ~ 1 + (1 | plate) + (1 | sample)",
  pastes = "strength ~ 1 + (1 | batch) + (1 | batch:cask)")
shared_data <- list(sleep_slope = "sleepstudy", sleep_int = "sleepstudy", sleep_zerocorr = "sleepstudy",
                    dyestuff = "Dyestuff", penicillin = "Penicillin", pastes = "Pastes")
for (id in names(shared)) for (reml in c(TRUE, FALSE))
  models[[paste(id, reml)]] <- fit_model(shared_data[[id]], shared[[id]], reml)
models[["dyestuff2 TRUE"]] <- fit_model("Dyestuff2", "Yield ~ 1 + (1 | Batch)", TRUE)
dataset_of <- function(id) {
  if (id %in% names(shared_data)) return(shared_data[[id]])
  if (id == "dyestuff2") return("Dyestuff2")
  Filter(function(case) case[[1]] == id, FITS)[[1]][[2]]
}
formula_of <- function(fm) paste(deparse(formula(fm), width.cutoff = 500), collapse = "")

# ---- conditional variances: ranef(condVar = TRUE) ------------------------------------
condvar <- list()
for (key in list(c("penicillin", TRUE), c("pastes", TRUE), c("unb_slope", TRUE), c("unb_slope", FALSE),
                 c("dyestuff2", TRUE), c("sleep_zerocorr", TRUE), c("sleep_w", TRUE),
                 c("orthodont_slope", TRUE), c("machines_nested", TRUE))) {
  fm <- model(key[1], as.logical(key[2]))
  re <- ranef(fm, condVar = TRUE)
  groups <- list()
  for (g in names(re)) {
    pv <- attr(re[[g]], "postVar")
    # one array (k x k x levels) per term; lme4 gives a list when terms share the factor
    arrays <- if (is.list(pv)) pv else list(pv)
    blocks <- lapply(arrays, function(a) lapply(seq_len(dim(a)[3]), function(k) a[, , k, drop = FALSE][, , 1]))
    groups[[g]] <- list(levels = rownames(re[[g]]), columns = colnames(re[[g]]),
                        modes = unname(as.list(re[[g]])),
                        term_columns = if (is.list(pv)) names(pv) else list(colnames(re[[g]])),
                        postvar = blocks)
  }
  condvar[[length(condvar) + 1]] <- list(id = key[1], reml = as.logical(key[2]),
                                         dataset = dataset_of(key[1]), formula = formula_of(fm), groups = groups)
}

# ---- predictions ---------------------------------------------------------------------
predict_cases <- list(
  list("penicillin", data.frame(plate = c("a", "b", "zz", "a"), sample = c("A", "F", "B", "yy")),
       list(NULL, NA, "~(1 | plate)", "~(1 | sample)"), TRUE),
  list("sleep_zerocorr", data.frame(Days = c(0, 4, 9, 3), Subject = c("308", "333", "372", "999")),
       list(NULL, NA, "~(1 | Subject)", "~(0 + Days | Subject)"), TRUE),
  list("pastes", data.frame(batch = c("A", "A", "B", "K"), cask = c("a", "d", "c", "a")),
       list(NULL, NA, "~(1 | batch)"), TRUE),
  list("unb_slope", data.frame(Days = c(0, 2.5, 7, 12), Subject = c("308", "335", "372", "372")),
       list(NULL, NA, "~(1 | Subject)"), FALSE),
  list("sleep_o", data.frame(Days = c(0, 5, 9), Subject = c("308", "309", "999"), o = c(0, 10, 18)),
       list(NULL, NA), TRUE)
)
predictions <- list()
for (case in predict_cases) {
  fm <- model(case[[1]], TRUE)
  for (re_form in case[[3]]) {
    rf <- if (is.null(re_form)) NULL else if (identical(re_form, NA)) NA else as.formula(re_form)
    values <- predict(fm, newdata = case[[2]], re.form = rf, allow.new.levels = case[[4]])
    predictions[[length(predictions) + 1]] <- list(
      id = case[[1]], reml = TRUE, dataset = dataset_of(case[[1]]), formula = formula_of(fm),
      newdata = case[[2]], re_form = if (is.null(re_form)) NULL else if (identical(re_form, NA)) "NA" else re_form,
      allow_new_levels = case[[4]], values = unname(values))
  }
}

# ---- anova: likelihood-ratio tests ---------------------------------------------------
anova_record <- function(id, ms, refit = TRUE) {
  a <- do.call(anova, c(ms, list(refit = refit)))
  list(id = id, formulas = lapply(ms, formula_of), reml = sapply(ms, isREML), refit = refit,
       npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik, deviance = a$deviance,
       Chisq = a$Chisq, Df = a[["Df"]], p = a[["Pr(>Chisq)"]], models = rownames(a))
}
anovas <- list(
  anova_record("sleep_int_slope_reml_refit", list(model("sleep_int"), model("sleep_slope"))),
  anova_record("sleep_three", list(model("sleep_int", FALSE), model("sleep_zerocorr", FALSE), model("sleep_slope", FALSE))),
  anova_record("sleep_int_slope_reml_norefit", list(model("sleep_int"), model("sleep_slope")), refit = FALSE),
  anova_record("unb_int_slope", list(model("unb_int", FALSE), model("unb_slope", FALSE))),
  anova_record("penicillin_sample", list(model("penicillin_plate", FALSE), model("penicillin", FALSE))),
  anova_record("orthodont_interaction", list(model("orthodont_additive", FALSE), model("orthodont_int", FALSE))),
  anova_record("machines_nested", list(model("machines_worker", FALSE), model("machines_nested", FALSE))),
  anova_record("oats_split", list(model("oats_block"), model("oats_split")))
)

# ---- confidence intervals: profile and Wald --------------------------------------------
confints <- list()
for (key in list(c("penicillin", TRUE), c("penicillin", FALSE), c("pastes", TRUE), c("unb_slope", TRUE),
                 c("dyestuff2", TRUE), c("sleep_int", FALSE), c("sleep_zerocorr", TRUE),
                 c("orthodont_slope", TRUE), c("machines_nested", TRUE))) {
  fm <- model(key[1], as.logical(key[2]))
  start <- proc.time()[["elapsed"]]
  prof <- suppressWarnings(confint(fm, method = "profile", level = 0.95))
  seconds <- proc.time()[["elapsed"]] - start
  wald <- confint(fm, method = "Wald", level = 0.95, parm = "beta_")
  confints[[length(confints) + 1]] <- list(
    id = key[1], reml = as.logical(key[2]), dataset = dataset_of(key[1]), formula = formula_of(fm),
    level = 0.95, seconds = seconds,
    profile = lapply(split(prof, seq_len(nrow(prof))), unname), profile_names = rownames(prof),
    wald = lapply(split(wald, seq_len(nrow(wald))), unname), wald_names = rownames(wald))
}
# a level other than 0.95, and the zeta profile itself
fm <- model("sleep_slope", TRUE)
ci90 <- confint(fm, method = "profile", level = 0.9)
pr <- as.data.frame(profile(fm))
profile_table <- list(id = "sleep_slope", reml = TRUE, level90 = lapply(split(ci90, seq_len(nrow(ci90))), unname),
                      level90_names = rownames(ci90),
                      zeta = pr$.zeta, par = as.character(pr$.par),
                      focal = sapply(seq_len(nrow(pr)), function(k) pr[k, as.character(pr$.par[k])]))

# ---- Satterthwaite and Kenward-Roger -------------------------------------------------
satterthwaite <- list()
for (key in list(c("sleep_slope", TRUE), c("unb_slope", TRUE), c("unb_slope", FALSE), c("penicillin", TRUE),
                 c("pastes", TRUE), c("unb_zerocorr", TRUE), c("orthodont_slope", TRUE),
                 c("orthodont_int", TRUE), c("oats_split", TRUE), c("machines_nested", TRUE),
                 c("chick_slope", TRUE), c("sleep_w", TRUE))) {
  fm <- model(key[1], as.logical(key[2]))
  lt <- lmerTest::as_lmerModLmerTest(fm)
  co <- coef(summary(lt, ddf = "Satterthwaite"))
  kr <- if (as.logical(key[2])) coef(summary(lt, ddf = "Kenward-Roger")) else NULL
  satterthwaite[[length(satterthwaite) + 1]] <- list(
    id = key[1], reml = as.logical(key[2]), dataset = dataset_of(key[1]), formula = formula_of(fm),
    terms = rownames(co), estimate = unname(co[, "Estimate"]), stderr = unname(co[, "Std. Error"]),
    df = unname(co[, "df"]), t = unname(co[, "t value"]), p = unname(co[, "Pr(>|t|)"]),
    df_kr = if (is.null(kr)) NULL else unname(kr[, "df"]), stderr_kr = if (is.null(kr)) NULL else unname(kr[, "Std. Error"]))
}

# ---- a parametric bootstrap (in distribution, not digit for digit) ---------------------
fm <- model("sleep_slope", TRUE)
statistic <- function(m) c(fixef(m), sigma = sigma(m), sd = as.data.frame(VarCorr(m))$sdcor[1:3])
start <- proc.time()[["elapsed"]]
boot <- bootMer(fm, statistic, nsim = 500, seed = 2015)
boot_seconds <- proc.time()[["elapsed"]] - start
replicates <- boot$t
bootstrap <- list(id = "sleep_slope", reml = TRUE, nsim = 500, seed = 2015, seconds = boot_seconds,
                  names = colnames(replicates),
                  mean = unname(colMeans(replicates)), sd = unname(apply(replicates, 2, sd)),
                  q025 = unname(apply(replicates, 2, quantile, 0.025)),
                  q975 = unname(apply(replicates, 2, quantile, 0.975)),
                  singular = sum(abs(replicates[, "sd3"]) < 1e-4 | abs(replicates[, "sd1"]) < 1e-4))

# ---- CHOLMOD's fill-reducing permutation for InstEval (chapter 9) ---------------------
# lme4 factors the whole of A = Lambda'Z'Z Lambda + I with CHOLMOD, which permutes it to
# reduce fill.  For the full data and for the students with codes 1 to 200 (a partially
# crossed subsample), at lme4's estimate: the order of the random effects (0-based, as
# in Z's columns: the terms in lme4's order s, d, dept, each level by level), nnz of
# CHOLMOD's factor with its permutation and without one (perm = FALSE), and whether
# lme4's own factor is supernodal.
cholmod_record <- function(d, label) {
  fm <- lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept), d, REML = FALSE)
  Lt <- getME(fm, "Lambdat"); Zt <- getME(fm, "Zt")
  A <- tcrossprod(Lt %*% Zt) + Diagonal(nrow(Lt))
  ours <- Cholesky(A, perm = TRUE, LDL = FALSE, super = FALSE)
  natural <- Cholesky(A, perm = FALSE, LDL = FALSE, super = FALSE)
  L <- getME(fm, "L")
  list(label = label, nobs = nobs(fm), q = nrow(Lt), theta = unname(getME(fm, "theta")),
       levels = as.list(sapply(getME(fm, "flist"), nlevels)), nnz_A_lower = nnzero(tril(A)),
       perm = ours@perm, nnz_L_perm = nnzero(as(ours, "sparseMatrix")),
       nnz_L_natural = nnzero(as(natural, "sparseMatrix")),
       lme4_factor_is_super = isTRUE(L@super), lme4_perm = L@perm)
}
inst <- DATA$InstEval
sub <- droplevels(inst[as.integer(as.character(inst$s)) <= 200, ])
cholmod <- list(cholmod_record(sub, "students 1-200"), cholmod_record(inst, "all"))

out <- list(
  cholmod = cholmod,
  # versions as the packages write them (DESCRIPTION: "1.1-31")
  provenance = list(R = R.version.string, lme4 = packageDescription("lme4")$Version,
                    lmerTest = packageDescription("lmerTest")$Version,
                    pbkrtest = packageDescription("pbkrtest")$Version,
                    Matrix = packageDescription("Matrix")$Version,
                    script = "tests/reference/make_lme4_more.R", date = format(Sys.Date())),
  fits = fits, condvar = condvar, predict = predictions, anova = anovas, confint = confints,
  profile = profile_table, satterthwaite = satterthwaite, bootstrap = bootstrap)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = FALSE),
           file.path(here, "lme4_more.json"))
cat("wrote", file.path(here, "lme4_more.json"), "\n")
