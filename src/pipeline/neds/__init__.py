"""NEDS (paper seed 002): multimodal multi-task-masking transformer for IBL sessions,
its baselines, metrics, multi-session pretraining / fine-tuning and region classification.

- :mod:`~pipeline.neds.config`: the ``neds`` config section;
- :mod:`~pipeline.neds.data`: binned session file -> arrays / tensors per split;
- :mod:`~pipeline.neds.masking`: per-sample multi-task masks;
- :mod:`~pipeline.neds.model`: the transformer, session adapters, losses;
- :mod:`~pipeline.neds.train`: resumable training (single-session, pretraining, fine-tuning);
- :mod:`~pipeline.neds.evaluate`: encoding / decoding metrics of a trained model;
- :mod:`~pipeline.neds.metrics`: bits per spike, single-trial R², accuracy;
- :mod:`~pipeline.neds.baselines`: ridge and reduced-rank regression encoders / decoders;
- :mod:`~pipeline.neds.region`: brain-region classification from neuron embeddings;
- :mod:`~pipeline.neds.report`: tables and the confusion-matrix figure.
"""
