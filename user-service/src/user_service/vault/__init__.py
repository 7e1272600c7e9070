"""The credential vault: users' credentials for external imputation services, encrypted at rest."""
