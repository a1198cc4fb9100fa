"""File-level helpers shared by every stage: atomic outputs, checksums, input errors."""
