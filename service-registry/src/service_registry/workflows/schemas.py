"""The workflow profile of a WES service: everything job-processor needs to build ``POST /runs``.

A profile names the workflow (URL, type and version as the node lists them, the engine where the
node requires one), the engine parameters, whether inputs go as URLs the node fetches or as
``workflow_attachment`` parts, static tags, and ``params``: for each input of the workflow,
either a constant (``{"value": ...}``) or the job field it comes from and how it is encoded
(``{"from": "input_files", "as": "cwl_file_array"}``). The exact rules are in
docs/service-registry.md ("Workflow profiles"); job-processor implements the encodings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from fedimpute_shared.text import SafeInput

JobField = Literal[
    "input_files",  # the job's input VCFs: signed URLs (url delivery) or attachment file names
    "panel_location",  # the panel's `location` on the node (published in service-info tags)
    "panel_id",  # the panel's `remote_id`
    "build",
    "population",
    "phasing",
    "r2_filter",
    "mode",
    "output_prefix",
    "password",
]
Encoding = Literal[
    "string",  # str(value)
    "number",  # float(value)
    "integer",  # int(value)
    "boolean",
    "url",  # input_files: the single file's URL (one input file only)
    "url_list",  # input_files: a JSON list of URLs
    "url_string",  # input_files: URLs joined by one space (the Starter Kit's Nextflow params)
    "cwl_file",  # {"class": "File", "location": <url>} (one input file only)
    "cwl_file_array",  # [{"class": "File", "location": <url>}, ...]
    "cwl_directory",  # {"class": "Directory", "location": <value>}
]
_FILE_ENCODINGS = {"url", "url_list", "url_string", "cwl_file", "cwl_file_array"}
_SCALAR_ENCODINGS = {"string", "number", "integer", "boolean"}

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")]
TagText = Annotated[str, StringConstraints(max_length=500)]


class _Strict(SafeInput):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


class FromJob(_Strict):
    """The workflow input takes a job field, encoded as ``as`` says."""

    from_: JobField = Field(alias="from")
    as_: Encoding = Field(default="string", alias="as")
    values: dict[ShortText, ShortText] | None = Field(
        default=None,
        description="Job value -> workflow value. A job value not listed is not supported "
        "by this workflow (job-processor refuses the job before submitting).",
    )

    @model_validator(mode="after")
    def _encoding_fits(self) -> FromJob:
        if self.from_ == "input_files" and self.as_ not in _FILE_ENCODINGS:
            raise ValueError(f"input_files must be encoded as one of {sorted(_FILE_ENCODINGS)}")
        if self.from_ != "input_files" and self.as_ in _FILE_ENCODINGS:
            raise ValueError(f"{self.as_} is an encoding of input_files only")
        if self.values is not None and self.as_ not in _SCALAR_ENCODINGS:
            raise ValueError("values (a translation table) applies to scalar encodings only")
        return self


class Constant(_Strict):
    """The workflow input always gets this value."""

    value: str | int | float | bool


class WorkflowProfile(_Strict):
    name: Name
    workflow_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    workflow_type: ShortText
    workflow_type_version: ShortText
    workflow_engine: ShortText | None = Field(
        default=None, description="WES 1.1; required by sapporo, unknown to WES 1.0 nodes"
    )
    workflow_engine_version: ShortText | None = None
    workflow_engine_parameters: dict[ShortText, TagText] = Field(default_factory=dict)
    input_delivery: Literal["url", "attachment"] = Field(
        default="url",
        description="url: inputs are signed URLs the node fetches; attachment: inputs are sent "
        "as workflow_attachment parts and referenced by file name",
    )
    params: dict[ParamName, FromJob | Constant] = Field(max_length=100)
    tags: dict[ShortText, TagText] = Field(default_factory=dict, description="added to each run")

    @model_validator(mode="after")
    def _coherent(self) -> WorkflowProfile:
        inputs = [
            p for p in self.params.values() if isinstance(p, FromJob) and p.from_ == "input_files"
        ]
        if len(inputs) != 1:
            raise ValueError("exactly one workflow input must take input_files")
        if self.workflow_engine_version and not self.workflow_engine:
            raise ValueError("workflow_engine_version needs workflow_engine")
        return self


class ProfileRequest(_Strict):
    """``PUT /services/{id}/workflow-profile``: a whole profile, or a shipped template completed
    or changed by the fields given (``{"template": "fedimpute-imputation-cwl",
    "workflow_url": "..."}``)."""

    template: ShortText | None = None
    name: Name | None = None
    workflow_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    workflow_type: ShortText | None = None
    workflow_type_version: ShortText | None = None
    workflow_engine: ShortText | None = None
    workflow_engine_version: ShortText | None = None
    workflow_engine_parameters: dict[ShortText, TagText] | None = None
    input_delivery: Literal["url", "attachment"] | None = None
    params: dict[ParamName, FromJob | Constant] | None = Field(default=None, max_length=100)
    tags: dict[ShortText, TagText] | None = None


class ProfileTemplate(BaseModel):
    id: str
    description: str
    source: str = Field(description="where the workflow and its inputs are defined")
    needs: list[str] = Field(description="profile fields the administrator must give")
    profile: dict[str, object]
