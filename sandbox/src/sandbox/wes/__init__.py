"""GA4GH WES simulator: spec, starter-kit, dnastack-cromwell and dnastack-workbench flavours."""

from sandbox.wes.app import build_wes
from sandbox.wes.options import OAuthClient, WesOptions, WesTimings

__all__ = ["OAuthClient", "WesOptions", "WesTimings", "build_wes"]
