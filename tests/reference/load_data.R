# Shared by the case-study scripts (make_case_*.R): the data of data/ with R's factor
# levels from data/levels.json, as make_lme4_more.R reads them.  Needs `here`, the
# folder of the calling script, and jsonlite.
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
