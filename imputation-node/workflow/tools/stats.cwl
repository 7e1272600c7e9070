#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: Imputation statistics of one chromosome (sites, DR2 by MAF bin)
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: stats.py
        entry:
          $include: ../scripts/stats.py
hints:
  DockerRequirement:
    dockerPull: docker.io/library/python:3.12-slim
  SoftwareRequirement:
    packages:
      - package: python3
        version: ["3.11", "3.12"]
baseCommand: [python3, stats.py]
inputs:
  imputed:
    type: File
    inputBinding: {prefix: --imputed}
  r2_filter:
    type: float
    inputBinding: {prefix: --r2-filter}
  chromosome:
    type: string
    inputBinding: {prefix: --chromosome}
  output_prefix:
    type: string
    inputBinding: {prefix: --prefix}
outputs:
  stats_json:
    type: File
    outputBinding: {glob: "*.stats.json"}
