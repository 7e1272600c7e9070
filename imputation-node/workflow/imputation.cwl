#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
label: FedImpute genotype imputation (QC + Beagle 5.4)
doc: |
  One bgzipped VCF per chromosome in; per chromosome: QC against the reference panel, phasing and
  imputation with Beagle 5.4, the r² filter on DR2, bgzip + tabix, statistics; then one QC
  report (JSON and HTML) and the imputation statistics for the run.
  The panel is a directory holding panel.json and, per contig, <contig>.vcf.gz (+ .tbi, phased
  reference), <contig>.sites.vcf.gz (sites with AF and AF_<population>) and <contig>.map (PLINK
  genetic map). See imputation-node/README.md.
requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}
inputs:
  target_vcfs:
    type: File[]
    doc: bgzip-compressed VCF, one per chromosome (a file or an http(s) URL)
  panel:
    type: Directory
    doc: the reference panel directory on the node (the `location` the node publishes)
  build:
    type: string
    doc: hg19 or hg38; must be the panel's build
  population:
    type: string
    default: all
    doc: panel population for the QC allele-frequency check ("all" for the whole panel)
  r2_filter:
    type: float
    default: 0.0
    doc: keep imputed sites with DR2 at or above this (0 keeps all)
  output_prefix:
    type: string
    default: imputed
  threads:
    type: int
    default: 1
  memory_gb:
    type: int
    default: 2
  seed:
    type: int
    default: 12345
    doc: Beagle's random seed (fixed, so a run can be repeated exactly)
  beagle_jar:
    type: string
    default: /usr/share/beagle/beagle.jar
    doc: path of Beagle's jar where the steps run (Debian's package by default)
  max_missing:
    type: float
    default: 0.1
    doc: QC drops sites with a larger share of missing genotypes
  min_samples:
    type: int
    default: 1
    doc: fewer samples than this in a target VCF fails the run
  strand_flips:
    type: string
    default: flip
    doc: flip (to the panel's strand) or drop strand-flipped sites
steps:
  impute:
    run: impute_chromosome.cwl
    scatter: target
    in:
      target: target_vcfs
      panel: panel
      build: build
      population: population
      r2_filter: r2_filter
      output_prefix: output_prefix
      threads: threads
      memory_gb: memory_gb
      seed: seed
      beagle_jar: beagle_jar
      max_missing: max_missing
      min_samples: min_samples
      strand_flips: strand_flips
    out: [dose_vcf, qc_json, stats_json, beagle_log]
  report:
    run: tools/report.cwl
    in:
      qc_jsons: impute/qc_json
      stats_jsons: impute/stats_json
      output_prefix: output_prefix
    out: [qc_report_json, qc_report_html, imputation_stats]
outputs:
  imputed_vcfs:
    type: File[]
    secondaryFiles: [.tbi]
    outputSource: impute/dose_vcf
  qc_report_json:
    type: File
    outputSource: report/qc_report_json
  qc_report_html:
    type: File
    outputSource: report/qc_report_html
  imputation_stats:
    type: File
    outputSource: report/imputation_stats
  beagle_logs:
    type: File[]
    outputSource: impute/beagle_log
