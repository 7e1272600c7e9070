"""The interface types: building targets and credentials from the other services' JSON."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

from job_processor.adapters.base import (
    AdapterError,
    AuthFailed,
    Credentials,
    InputFile,
    JobSpec,
    NotSubmittable,
    RemoteNotFound,
    RemoteRejected,
    RemoteStatus,
    RemoteUnavailable,
    ServiceTarget,
)

SERVICE_ID = uuid.uuid4()


def registry_payload(**changes):
    payload = {
        "id": str(SERVICE_ID),
        "slug": "afrigen-d",
        "kind": "michigan",
        "base_url": "https://impute.afrigen-d.org/",
        "api_url": None,
        "cloudgene_app_id": "imputationserver2@2.0.12",
        "workflow_profile": None,
        "protocol_options": {},
        "credential_type": "api_token",
        "requires_credentials": True,
        "panels": [],
    }
    return payload | changes


def test_target_from_registry_keeps_app_id_as_stored():
    target = ServiceTarget.from_registry(registry_payload())
    assert target.id == SERVICE_ID
    assert target.service_type == "michigan"
    assert target.base_url == "https://impute.afrigen-d.org"
    assert target.app_id == "imputationserver2@2.0.12"
    assert target.auth["credential_type"] == "api_token"
    assert target.raw["panels"] == []


def test_target_from_registry_wes_and_dnastack_options():
    profile = {"name": "x", "workflow_url": "u", "params": {}}
    wes = ServiceTarget.from_registry(
        registry_payload(
            kind="ga4gh_wes",
            cloudgene_app_id=None,
            api_url="http://node:8080/ga4gh/wes/v1/",
            workflow_profile=profile,
        )
    )
    assert wes.api_url == "http://node:8080/ga4gh/wes/v1"
    assert wes.app_id is None
    assert wes.workflow_profile == profile
    dnastack = ServiceTarget.from_registry(
        registry_payload(
            kind="dnastack",
            protocol_options={
                "mode": "workbench",
                "namespace": "ns",
                "token_endpoint": "https://t",
            },
        )
    )
    assert dnastack.auth["mode"] == "workbench"
    assert dnastack.auth["token_endpoint"] == "https://t"


def test_credentials_from_vault_and_never_in_repr():
    token = Credentials.from_vault({"credential_type": "api_token", "secret": {"token": "s3cret"}})
    assert token.kind == "token"
    assert token.token == "s3cret"
    assert "s3cret" not in repr(token)
    client = Credentials.from_vault(
        {
            "credential_type": "oauth_client_credentials",
            "secret": {"client_id": "c", "client_secret": "s"},
        }
    )
    assert client.kind == "client_credentials"
    assert client.token is None
    assert Credentials.from_vault(None).kind == "none"
    assert Credentials.from_vault({"credential_type": "none", "secret": {}}).kind == "none"


def test_job_spec_default_tag_and_hidden_password():
    @asynccontextmanager
    async def opener():
        async def chunks():
            yield b""

        yield chunks()

    job_id = uuid.uuid4()
    spec = JobSpec(
        job_id=job_id,
        name="study",
        panel="apps@h3africa-v6hc-s@1.0.0",
        build="hg38",
        phasing="eagle",
        population="afr",
        r2_filter=0.3,
        mode="imputation",
        inputs=[InputFile(uuid.uuid4(), "chr20.vcf.gz", 10, None, opener)],
        result_password="zip-password",
    )
    assert spec.tag == f"fedimpute-{job_id}"
    assert "zip-password" not in repr(spec)


def test_error_hierarchy_and_terminal_states():
    for cls in (RemoteUnavailable, AuthFailed, RemoteRejected, RemoteNotFound, NotSubmittable):
        error = cls("why", status_code=400)
        assert isinstance(error, AdapterError)
        assert error.message == "why"
    assert RemoteStatus("completed", "4").terminal
    assert not RemoteStatus("paused", "PAUSED").terminal
