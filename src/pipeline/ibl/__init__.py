"""IBL Neuropixels sessions (NEDS, seed 002): read ALF folders, bin spikes and behaviour
into trial-aligned tensors.

- :mod:`pipeline.ibl.alf_session`: load and validate one session (spikes, clusters,
  trials, wheel, camera motion energy) from an ALF folder / ONE cache.
- :mod:`pipeline.ibl.signals`: resample continuous signals (wheel, motion energy) to bins.
- :mod:`pipeline.ibl.trials`: trial filters, label encodings, train/val/test split.
- :mod:`pipeline.ibl.binning`: spike counts per trial x bin x neuron, and the stage that
  writes the binned-session file (:func:`pipeline.ibl.binning.bin_session`).
"""
