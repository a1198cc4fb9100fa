"""Behaviour aligned to imaging frames (NLP4Neuro, seed 000): the 200 Hz tail log
averaged within each plane frame by timestamps (:mod:`pipeline.behavior.tail`)."""
