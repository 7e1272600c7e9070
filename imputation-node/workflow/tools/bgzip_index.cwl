#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: bgzip-compress and tabix-index a VCF
hints:
  DockerRequirement:
    dockerPull: quay.io/biocontainers/htslib:1.16--h6bc39ce_0
  SoftwareRequirement:
    packages:
      - package: tabix
        version: ["1.16"]
        specs: ["https://identifiers.org/biotools/tabix"]
baseCommand: [sh, -c]
arguments:
  # sh -c SCRIPT NAME ARG...: the file names arrive as positional parameters, never in the script
  - 'bgzip -c "$1" > "$2" && tabix -p vcf "$2"'
  - bgzip_index
  - $(inputs.vcf.path)
  - $(inputs.vcf.basename).gz
inputs:
  vcf: File
outputs:
  vcf_gz:
    type: File
    secondaryFiles: [.tbi]
    outputBinding: {glob: $(inputs.vcf.basename).gz}
