"""Synthetic ground-truth recordings for the demo and for tests.

- :mod:`pipeline.synth.zebrafish`: two-photon TIFF stacks + 200 Hz tail log + stimulus log
  for a larval zebrafish (NLP4Neuro, seed 000).
- :mod:`pipeline.synth.ibl`: IBL-like Neuropixels sessions, each written as a ONE cache (NEDS, seed 002).

Generators write the inputs the pipeline reads and, separately, a ground-truth HDF5 file
that only tests and validation stages open.
"""
