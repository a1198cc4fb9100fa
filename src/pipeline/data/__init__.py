"""Decoder datasets (NLP4Neuro): a fish's activity and tail on one clock, chronological
splits, training-only normalisation, and lazily gathered sliding windows
(:mod:`pipeline.data.windows`)."""
