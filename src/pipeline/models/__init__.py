"""NLP4Neuro decoder models: input embeddings, reservoir, LSTM and language-model decoders."""
