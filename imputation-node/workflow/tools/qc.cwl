#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: QC of one target VCF against the reference panel
doc: |
  Checks build, chromosome, sort order, bgzip compression and sample count, then drops
  duplicate, off-panel, multiallelic, allele-mismatched, strand-ambiguous (by allele frequency),
  poorly called and monomorphic sites, flips strand flips (or drops them) and recodes REF/ALT
  swaps to the panel's orientation. Writes the kept sites (GT only, plain VCF), a JSON report
  and the panel's name of the chromosome (a file: an output
  expression would fail noisily after a QC error). Bad input ends the step with one ERROR line.
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: qc.py
        entry:
          $include: ../scripts/qc.py
hints:
  DockerRequirement:
    dockerPull: docker.io/library/python:3.12-slim
  SoftwareRequirement:
    packages:
      - package: python3
        version: ["3.11", "3.12"]
baseCommand: [python3, qc.py]
arguments:
  - prefix: --label
    valueFrom: $(inputs.target.basename)
inputs:
  target:
    type: File
    inputBinding: {prefix: --target}
  panel:
    type: Directory
    inputBinding: {prefix: --panel}
  build:
    type: string
    inputBinding: {prefix: --build}
  population:
    type: string
    inputBinding: {prefix: --population}
  output_prefix:
    type: string
    inputBinding: {prefix: --prefix}
  max_missing:
    type: float
    default: 0.1
    inputBinding: {prefix: --max-missing}
  af_threshold:
    type: float
    default: 0.2
    inputBinding: {prefix: --af-threshold}
  min_samples:
    type: int
    default: 1
    inputBinding: {prefix: --min-samples}
  strand_flips:
    type: string
    default: flip
    inputBinding: {prefix: --strand-flips}
outputs:
  qc_vcf:
    type: File
    outputBinding: {glob: "*.qc.vcf"}
  qc_json:
    type: File
    outputBinding: {glob: "*.qc.json"}
  chromosome:
    type: File
    doc: the panel's name of the chromosome (read by the next steps with loadContents)
    outputBinding: {glob: chromosome.txt}
