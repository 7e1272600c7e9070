"""Files: metadata, listing, downloads, signed links, deletion, the access log."""
