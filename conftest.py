"""Fixtures every test suite in the workspace can use (see fedimpute_shared.testing)."""

pytest_plugins = ["fedimpute_shared.testing.pytest_plugin"]
