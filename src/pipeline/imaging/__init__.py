"""Two-photon imaging preprocessing (NLP4Neuro, seed 000): motion correction
(:mod:`pipeline.imaging.normcorre`) before Suite2P extraction."""
