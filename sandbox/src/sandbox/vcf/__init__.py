"""VCF handling shared by every simulator: BGZF, the §7 input checks, and QC."""
