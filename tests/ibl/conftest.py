"""Fixtures of the IBL tests (built in ibl_sessions.py)."""

from ibl_sessions import real_spike_session, synthetic_session  # noqa: F401  (pytest fixtures)
