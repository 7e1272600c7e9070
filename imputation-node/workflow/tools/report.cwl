#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: The run's QC report (JSON and HTML) and imputation statistics
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: report.py
        entry:
          $include: ../scripts/report.py
hints:
  DockerRequirement:
    dockerPull: docker.io/library/python:3.12-slim
  SoftwareRequirement:
    packages:
      - package: python3
        version: ["3.11", "3.12"]
baseCommand: [python3, report.py]
inputs:
  qc_jsons:
    type: File[]
    inputBinding: {prefix: --qc}
  stats_jsons:
    type: File[]
    inputBinding: {prefix: --stats}
  output_prefix:
    type: string
    inputBinding: {prefix: --prefix}
outputs:
  qc_report_json:
    type: File
    outputBinding: {glob: "*.qc_report.json"}
  qc_report_html:
    type: File
    outputBinding: {glob: "*.qc_report.html"}
  imputation_stats:
    type: File
    outputBinding: {glob: "*.imputation_stats.json"}
