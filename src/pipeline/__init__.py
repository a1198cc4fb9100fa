"""Research pipeline reproducing NLP4Neuro (zebrafish tail decoding) and NEDS (IBL
multimodal encoding/decoding). All logic lives here; Snakemake rules and
`workflow/scripts/` only call into this package."""

__version__ = "0.1.0"
