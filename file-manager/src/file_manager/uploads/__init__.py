"""Uploads: simple streaming (POST /files) and resumable (tus 1.0 under /files/uploads)."""
