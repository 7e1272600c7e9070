#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
label: QC, phasing + imputation, r² filter and statistics of one chromosome
requirements:
  StepInputExpressionRequirement: {}
inputs:
  target: File
  panel: Directory
  build: string
  population: string
  r2_filter: float
  output_prefix: string
  threads: int
  memory_gb: int
  seed: int
  beagle_jar: string
  max_missing: float
  min_samples: int
  strand_flips: string
steps:
  qc:
    run: tools/qc.cwl
    in:
      target: target
      panel: panel
      build: build
      population: population
      output_prefix: output_prefix
      max_missing: max_missing
      min_samples: min_samples
      strand_flips: strand_flips
    out: [qc_vcf, qc_json, chromosome]
  compress:
    run: tools/bgzip_index.cwl
    in:
      vcf: qc/qc_vcf
    out: [vcf_gz]
  beagle:
    run: tools/beagle.cwl
    in:
      target: compress/vcf_gz
      panel: panel
      chromosome:
        source: qc/chromosome
        loadContents: true
        valueFrom: $(self.contents)
      output_prefix: output_prefix
      threads: threads
      memory_gb: memory_gb
      seed: seed
      beagle_jar: beagle_jar
    out: [imputed, log]
  filter:
    run: tools/r2_filter.cwl
    in:
      imputed: beagle/imputed
      qc_vcf: compress/vcf_gz
      chromosome:
        source: qc/chromosome
        loadContents: true
        valueFrom: $(self.contents)
      output_prefix: output_prefix
      r2_filter: r2_filter
      threads: threads
    out: [dose_vcf]
  stats:
    run: tools/stats.cwl
    in:
      imputed: beagle/imputed
      r2_filter: r2_filter
      chromosome:
        source: qc/chromosome
        loadContents: true
        valueFrom: $(self.contents)
      output_prefix: output_prefix
    out: [stats_json]
outputs:
  dose_vcf:
    type: File
    secondaryFiles: [.tbi]
    outputSource: filter/dose_vcf
  qc_json:
    type: File
    outputSource: qc/qc_json
  stats_json:
    type: File
    outputSource: stats/stats_json
  beagle_log:
    type: File
    outputSource: beagle/log
