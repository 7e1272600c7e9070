"""A real imputation node: a CWL v1.2 imputation workflow (QC + Beagle 5.4) behind sapporo (WES).

Independent of the FedImpute platform's packages; see imputation-node/README.md.
"""
