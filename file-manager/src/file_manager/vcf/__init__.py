"""VCF validation: the file-level rules the imputation servers enforce (external-protocols §7),
statistics, build detection and the tabix index, with bounded work on hostile input."""
