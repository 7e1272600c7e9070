"""Workflow profiles shipped with the registry, for the workflows the specs name and for the
project's own imputation workflow. An administrator applies one to a service with
``PUT /services/{id}/workflow-profile {"template": "<id>", ...}`` and gives what it ``needs``."""

from __future__ import annotations

from typing import Any

from service_registry.workflows.schemas import ProfileTemplate


def _from(field: str, encoding: str = "string") -> dict[str, Any]:
    return {"from": field, "as": encoding}


TEMPLATES: dict[str, ProfileTemplate] = {
    template.id: template
    for template in (
        ProfileTemplate(
            id="fedimpute-imputation-cwl",
            description="The project's imputation workflow (QC + Beagle 5, CWL v1.2) on a "
            "FedImpute imputation node (sapporo with cwltool).",
            source="/work/briefs/node-contract.md §2 as written into imputation-node/README.md",
            needs=["workflow_url"],
            profile={
                "name": "FedImpute imputation (CWL v1.2)",
                "workflow_type": "CWL",
                "workflow_type_version": "v1.2",
                "workflow_engine": "cwltool",  # sapporo refuses a run without an engine
                "input_delivery": "url",
                "params": {
                    "target_vcfs": _from("input_files", "cwl_file_array"),
                    "panel": _from("panel_location", "cwl_directory"),
                    "build": _from("build"),
                    "population": _from("population"),
                    "r2_filter": _from("r2_filter", "number"),
                    "output_prefix": _from("output_prefix"),
                    "threads": {"value": 1},
                    "memory_gb": {"value": 2},
                },
            },
        ),
        ProfileTemplate(
            id="starter-kit-flagstat",
            description="grbot/flagstat (Nextflow) as run on the eLwazi pilot nodes through the "
            "GA4GH Starter Kit WES: samtools flagstat of the input files (not an imputation).",
            source="specs/external-protocols.md §3.1 (captured submit at the Uganda node)",
            needs=[],
            profile={
                "name": "grbot/flagstat (Nextflow 21.04.0)",
                "workflow_url": "https://github.com/grbot/flagstat",
                "workflow_type": "NEXTFLOW",
                "workflow_type_version": "21.04.0",
                "input_delivery": "url",
                "params": {"input": _from("input_files", "url_string")},
            },
        ),
        ProfileTemplate(
            id="sandbox-imputation",
            description="The imputation workflow the sandbox's WES simulators run (MIS2's "
            "pipeline, simulated): Cloudgene-style parameters.",
            source="sandbox/README.md (WES runs)",
            needs=[],
            profile={
                "name": "Sandbox imputation (MIS2 pipeline, simulated)",
                "workflow_url": "https://github.com/genepi/imputationserver2",
                "workflow_type": "WDL",
                "workflow_type_version": "1.0",
                "input_delivery": "url",
                "params": {
                    "input_vcf": _from("input_files", "url_list"),
                    "refpanel": _from("panel_id"),
                    "population": _from("population"),
                    "build": _from("build"),
                    "phasing": _from("phasing"),
                    "mode": _from("mode"),
                    "r2Filter": _from("r2_filter"),
                    "password": _from("password"),
                },
            },
        ),
    )
}
