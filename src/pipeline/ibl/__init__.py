"""IBL Neuropixels sessions (NEDS, seed 002): read sessions of a local ONE cache (or DANDI
NWB files), bin spikes and behaviour into trial-aligned tensors.

- :mod:`pipeline.ibl.alf_session`: load and validate one session (spikes, clusters and
  channels per probe collection, trials, wheel, camera motion energy) through ONE-api.
- :mod:`pipeline.ibl.nwb_session`: the same from a DANDI 000409-style NWB file.
- :mod:`pipeline.ibl.regions`: Allen ids and acronyms at the Beryl/Cosmos/Allen levels (iblatlas).
- :mod:`pipeline.ibl.signals`: resample continuous signals (wheel, motion energy) to bins.
- :mod:`pipeline.ibl.trials`: trial filters, label encodings, train/val/test split.
- :mod:`pipeline.ibl.binning`: spike counts per trial x bin x neuron, and the stage that
  writes the binned-session file (:func:`pipeline.ibl.binning.bin_session`).
"""
