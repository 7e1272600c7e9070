# The workflow's `filter` step: keep the sites with DR2 >= the r² filter, give the file the
# target's ##contig line (Beagle writes none; build checks downstream read it) and index it.
# Arguments: IMPUTED OUTPUT R2_FILTER THREADS QC_VCF (the QC'd target, whose header holds the
# contig line). With a filter of 0 every site is kept, so Beagle's bgzip output is only
# re-headed, not decompressed and compressed again. Included into a CWL tool: no CWL parameter
# reference may appear here (so no dollar-parenthesis command substitution either).
set -eu
imputed=$1 output=$2 r2=$3 threads=$4 qc_vcf=$5
bcftools view -h "$imputed" > beagle.header
bcftools view -h "$qc_vcf" | grep '^##contig=' > contig.lines || true
{ head -n 1 beagle.header; cat contig.lines; tail -n +2 beagle.header; } > header.txt
if awk -v r2="$r2" 'BEGIN { exit !(r2 > 0) }'; then
  bcftools view --no-version --threads "$threads" -i "INFO/DR2>=$r2" -Oz -o filtered.vcf.gz "$imputed"
  source=filtered.vcf.gz
else
  source=$imputed
fi
bcftools reheader -h header.txt -o "$output" "$source"
bcftools index --tbi "$output"
