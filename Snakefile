# NLP4Neuro (zebrafish tail decoding) + NEDS (IBL encoding/decoding) pipeline.
# What each rule does, its wildcards and file contracts: docs/architecture.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/synth.smk"
include: "rules/inventory.smk"
include: "rules/imaging.smk"
include: "rules/ibl.smk"
include: "rules/neds_common.smk"
include: "rules/neds.smk"
# one training job per run (the rule's text, hence Snakemake's code trigger, as before
# runs_per_job existed), or per runs_per_job runs (nlp4neuro.runs_per_job or per catalog model)
if not DESIGN.chunked:

    include: "rules/train.smk"

else:

    include: "rules/train_runs.smk"

include: "rules/salience.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
