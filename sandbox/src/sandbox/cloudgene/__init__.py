"""Cloudgene (Michigan / TOPMed / AfriGen-D imputation server) simulator, CG3 and CG2 flavours."""

from sandbox.cloudgene.app import build_cloudgene
from sandbox.cloudgene.options import CloudgeneOptions, CloudgeneTimings, Panel, Population

__all__ = ["CloudgeneOptions", "CloudgeneTimings", "Panel", "Population", "build_cloudgene"]
