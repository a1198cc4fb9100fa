"""Statistics of the NLP4Neuro evaluation: per-cell summaries (mean, SEM, n), the
two-sample and paired tests of the paper tables, multiple-comparison correction, and the
metrics-file loader that turns training jobs into one table of records."""
