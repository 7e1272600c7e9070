#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: Keep imputed sites with DR2 at or above the r² filter, bgzipped and indexed
hints:
  DockerRequirement:
    dockerPull: quay.io/biocontainers/bcftools:1.16--hfe4b78e_1
  SoftwareRequirement:
    packages:
      - package: bcftools
        version: ["1.16"]
        specs: ["https://identifiers.org/biotools/bcftools"]
baseCommand: [sh, -c]
arguments:
  - >-
    bcftools view --no-version --threads "$4" -i "INFO/DR2>=$3" -Oz -o "$2" "$1"
    && bcftools index --tbi "$2"
  - r2_filter
  - $(inputs.imputed.path)
  - $(inputs.output_prefix).$(inputs.chromosome).dose.vcf.gz
  - $(inputs.r2_filter)
  - $(inputs.threads)
inputs:
  imputed: File
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
