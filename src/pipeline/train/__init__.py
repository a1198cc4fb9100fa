"""Training machinery shared by the NLP4Neuro decoders and NEDS.

- :mod:`pipeline.train.checkpoint`: atomic, ``weights_only`` checkpoints, RNG state,
  SIGTERM handling and seed-determined batch order (exact mid-epoch resumption).
"""
