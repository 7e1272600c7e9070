"""The imputation app as Cloudgene describes it: its inputs (IS2 `cloudgene.yaml` for CG3, the
MIS v1 `minimac4.yaml` for CG2) and the `GET /api/v2/server/apps/{id}` form built from them.

Submit validation reads the same inputs: a form field that is not one of them is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.cloudgene.options import CloudgeneOptions

__all__ = ["AppInput", "app_form", "app_inputs"]


@dataclass(frozen=True)
class AppInput:
    id: str
    type: str
    description: str = ""
    value: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    visible: bool = True


_LIST_BUILD = AppInput(
    "build", "list", "Array Build", "hg19", {"hg19": "GRCh37/hg19", "hg38": "GRCh38/hg38"}
)
_R2 = AppInput(
    "r2Filter",
    "list",
    "rsq Filter",
    "0",
    {"0": "off", "0.001": "0.001", "0.1": "0.1", "0.2": "0.2", "0.3": "0.3"},
)
_COMMON_HEAD = [
    AppInput("refpanel", "app_list", "Reference Panel"),
    AppInput("files", "local_folder", "Input Files (VCF)"),
    _LIST_BUILD,
    _R2,
]
_COMMON_TAIL = [
    AppInput(
        "aesEncryption",
        "checkbox",
        "AES 256 encryption",
        "false",
        {"true": "true", "false": "false"},
    ),
    AppInput(
        "meta",
        "checkbox",
        "Generate Meta-imputation file",
        "false",
        {"true": "true", "false": "false"},
    ),
    AppInput("myseparator", "separator"),
    AppInput(
        "check1",
        "terms_checkbox",
        "I will not attempt to re-identify or contact research participants.",
    ),
    AppInput(
        "check2",
        "terms_checkbox",
        "I will report any inadvertent data release, security breach or other data management incident of "
        "which I become aware.",
    ),
]
_POPULATION = AppInput("population", "binded_list", "Allele Frequency Check")

_CG3_INPUTS = [
    *_COMMON_HEAD,
    AppInput(
        "phasing",
        "list",
        "Phasing Engine",
        "eagle",
        {
            "eagle": "Eagle v2.4",
            "beagle": "Beagle 5.4 (HRC and 1KG only)",
            "no_phasing": "No phasing",
        },
    ),
    _POPULATION,
    AppInput(
        "mode",
        "list",
        "Mode",
        "imputation",
        {"qc_only": "Quality Control Only", "imputation": "Quality Control & Imputation"},
    ),
    *_COMMON_TAIL[:3],
    AppInput("password", "text", "Password set by user.", visible=False),
    *_COMMON_TAIL[3:],
]
_CG2_INPUTS = [
    *_COMMON_HEAD,
    AppInput(
        "phasing",
        "list",
        "Phasing",
        "eagle",
        {"eagle": "Eagle v2.4 (phased output)", "no_phasing": "No phasing"},
    ),
    _POPULATION,
    AppInput(
        "mode",
        "list",
        "Mode",
        "imputation",
        {
            "qconly": "Quality Control Only",
            "imputation": "Quality Control & Imputation",
            "phasing": "Quality Control & Phasing Only",
        },
    ),
    *_COMMON_TAIL[:3],
    AppInput("password", "text", "Password", "auto", visible=False),
    *_COMMON_TAIL[3:],
]


def app_inputs(flavour: str) -> list[AppInput]:
    return _CG3_INPUTS if flavour == "cg3" else _CG2_INPUTS


def _input_json(item: AppInput, options: CloudgeneOptions) -> dict[str, Any]:
    """One visible input as Cloudgene renders it; `app_list`/`binded_list` list the panels."""
    body: dict[str, Any] = {"id": item.id, "description": item.description, "type": item.type}
    if item.value is not None:
        body["value"] = item.value
    body |= {"visible": item.visible, "required": True, "adminOnly": False}
    if item.type == "local_folder":
        body["source"] = "upload"
    if item.type == "app_list":
        body["values"] = [{"key": p.key, "value": p.name} for p in options.panels]
    elif item.type == "binded_list":
        body["bind"] = "refpanel"
        body["values"] = [
            {
                "key": p.key,
                "label": p.name,
                "values": [{"key": pop.id, "value": pop.name} for pop in p.populations],
            }
            for p in options.panels
        ]
    elif item.values:
        body["values"] = [{"key": k, "value": item.values[k]} for k in sorted(item.values)]
    return body


def app_form(options: CloudgeneOptions, app_id: str) -> dict[str, Any]:
    """The body of `GET /api/v2/server/apps/{app_id}` (visible inputs only)."""
    return {
        "id": app_id,
        "name": options.app_name,
        "version": options.resolved_app_version(),
        "description": "Michigan Imputation Server pipeline using Minimac4 (FedImpute sandbox).",
        "author": "Lukas Forer, Sebastian Schoenherr and Christian Fuchsberger",
        "website": "https://imputationserver.readthedocs.io",
        "submitButton": "Start Imputation",
        "params": [_input_json(i, options) for i in app_inputs(options.flavour) if i.visible],
        "s3Workspace": False,
    }
