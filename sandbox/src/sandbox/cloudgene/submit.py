"""Turning a `POST /api/v2/jobs/submit/{app}` multipart body into job parameters, with the rules
of CG3 `JobParameterParser` and CG2 `SubmitJob`.

Field names and values are HTML-escaped first (commons-lang `escapeHtml`, so a password with `&`
really becomes `&amp;`), a leading `input-` is stripped, `job-name` is kept aside, any field that
is not an input of the app is refused with `Parameter '<name>' not found.`, the first value of a
repeated field wins, repeated `files` parts are all uploaded, and a checkbox present with any
value takes its "true" value.
"""

from __future__ import annotations

import html.entities
from dataclasses import dataclass, field

from starlette.datastructures import FormData, UploadFile

from sandbox.cloudgene.app_form import AppInput

__all__ = ["ParsedForm", "SubmitError", "escape_html", "parse_form"]

_BASIC = {'"': "&quot;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


class SubmitError(Exception):
    """A refused submit; the routes answer 400 with the flavour's error body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def escape_html(text: str) -> str:
    """commons-lang 2 `StringEscapeUtils.escapeHtml`: the four basics plus every non-ASCII char."""
    out = []
    for char in text:
        if char in _BASIC:
            out.append(_BASIC[char])
        elif ord(char) > 0x7F:
            name = html.entities.codepoint2name.get(ord(char))
            out.append(f"&{name};" if name else f"&#{ord(char)};")
        else:
            out.append(char)
    return "".join(out)


@dataclass
class ParsedForm:
    values: dict[str, str] = field(default_factory=dict)
    uploads: list[tuple[str, bytes]] = field(default_factory=list)
    job_name: str | None = None


def _field_name(raw: str, flavour: str, is_file: bool) -> str:
    key = escape_html(raw)
    if flavour == "cg2" and is_file:
        return key.replace("-upload", "").replace("input-", "")
    return key.replace("input-", "") if key.startswith("input-") else key


async def parse_form(form: FormData, inputs: list[AppInput], flavour: str) -> ParsedForm:
    """Apply the parser rules; raise `SubmitError` with the server's message on a bad field."""
    by_id = {i.id: i for i in inputs}
    parsed = ParsedForm()
    for raw_name, value in form.multi_items():
        is_file = isinstance(value, UploadFile)
        key = _field_name(raw_name, flavour, is_file)
        if key == "job-name" or (flavour == "cg3" and key.endswith("-pattern")):
            if key == "job-name" and parsed.job_name is None and isinstance(value, str):
                parsed.job_name = escape_html(value)
            continue
        item = by_id.get(key)
        if item is None:
            raise SubmitError(f"Parameter '{key}' not found.")
        if isinstance(value, UploadFile):
            data = await value.read()
            name = (value.filename or key).replace("\\", "/").rsplit("/", 1)[-1]
            if item.type == "local_folder":
                parsed.uploads.append((name, data))
            else:
                parsed.values.setdefault(key, name)
            continue
        # A text value for a file input (a URL, say) is accepted here and the job fails later
        # with no input file: Cloudgene 3's "URL-based uploads are no longer supported" belongs
        # to its importer endpoint, not to submit (CG3 ImportController).
        parsed.values.setdefault(key, escape_html(value))
    for item in inputs:
        if item.type == "checkbox" and item.visible:
            parsed.values[item.id] = item.values["true" if item.id in parsed.values else "false"]
    return parsed
