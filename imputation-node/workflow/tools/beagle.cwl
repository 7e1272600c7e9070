#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
label: Phasing and imputation with Beagle 5.4
doc: |
  Runs Beagle's jar directly (`java -Xmx<memory_gb>g -jar <beagle_jar> key=value ...`), with the
  panel's `<chromosome>.vcf.gz` as reference and `<chromosome>.map` as genetic map, genotype
  probabilities on (`gp=true`) and a fixed seed. `beagle_jar` is where the jar lives: Debian's
  package installs it at /usr/share/beagle/beagle.jar; the biocontainers image at
  /usr/local/share/beagle-5.4_22Jul22.46e-0/beagle.jar.
hints:
  DockerRequirement:
    dockerPull: quay.io/biocontainers/beagle:5.4_22Jul22.46e--hdfd78af_0
  SoftwareRequirement:
    packages:
      - package: beagle
        version: ["5.4"]
        specs: ["https://identifiers.org/biotools/beagle"]
requirements:
  ResourceRequirement:
    coresMin: $(inputs.threads)
baseCommand: java
arguments:
  - -Xmx$(inputs.memory_gb)g
  - -jar
  - $(inputs.beagle_jar)
  - gt=$(inputs.target.path)
  - ref=$(inputs.panel.path)/$(inputs.chromosome).vcf.gz
  - map=$(inputs.panel.path)/$(inputs.chromosome).map
  - out=$(inputs.output_prefix).$(inputs.chromosome).beagle
  - gp=true
  - seed=$(inputs.seed)
  - nthreads=$(inputs.threads)
inputs:
  target:
    type: File
    secondaryFiles: [.tbi]
  panel: Directory
  chromosome: string
  output_prefix: string
  threads: int
  memory_gb: int
  seed: int
  beagle_jar: string
outputs:
  imputed:
    type: File
    outputBinding: {glob: $(inputs.output_prefix).$(inputs.chromosome).beagle.vcf.gz}
  log:
    type: File
    outputBinding: {glob: $(inputs.output_prefix).$(inputs.chromosome).beagle.log}
