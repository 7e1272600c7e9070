#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: Keep imputed sites with DR2 at or above the r² filter, with the target's contig line, indexed
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: r2_filter.sh
        entry:
          $include: ../scripts/r2_filter.sh
hints:
  DockerRequirement:
    dockerPull: quay.io/biocontainers/bcftools:1.16--hfe4b78e_1
  SoftwareRequirement:
    packages:
      - package: bcftools
        version: ["1.16"]
        specs: ["https://identifiers.org/biotools/bcftools"]
baseCommand: [sh, r2_filter.sh]
arguments:
  - $(inputs.imputed.path)
  - $(inputs.output_prefix).$(inputs.chromosome).dose.vcf.gz
  - $(inputs.r2_filter)
  - $(inputs.threads)
  - $(inputs.qc_vcf.path)
inputs:
  imputed: File
  qc_vcf: File
  chromosome: string
  output_prefix: string
  r2_filter: float
  threads:
    type: int
    default: 1
outputs:
  dose_vcf:
    type: File
    secondaryFiles: [.tbi]
    outputBinding: {glob: $(inputs.output_prefix).$(inputs.chromosome).dose.vcf.gz}
