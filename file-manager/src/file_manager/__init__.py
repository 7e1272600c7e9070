"""file-manager: streaming and resumable (tus 1.0) uploads of genotype files, VCF validation with
the rules the imputation servers enforce, checksums, storage, downloads and signed links, quotas
and retention."""
