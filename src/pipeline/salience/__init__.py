"""Input-gradient salience maps of trained decoders (NLP4Neuro Sec. 3.5) and their validation on synthetic truth."""
