"""Paper outputs: table writers (CSV + LaTeX + Markdown with provenance header/footer),
the NLP4Neuro tables built from :mod:`pipeline.stats`, and the figures."""
