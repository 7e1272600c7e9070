"""Problems specific to file-manager (the common ones live in fedimpute_shared.problems)."""

from __future__ import annotations

from fedimpute_shared.problems import ProblemError


class InsufficientStorage(ProblemError):
    """The user's storage quota would be exceeded (507)."""

    status, slug = 507, "quota-exceeded"


class Locked(ProblemError):
    status, slug = 423, "locked"


class ChecksumMismatch(ProblemError):
    """tus checksum extension: the chunk (or the whole file) does not match its checksum."""

    status, slug, title = 460, "checksum-mismatch", "Checksum Mismatch"
