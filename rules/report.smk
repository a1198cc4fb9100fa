# `snakemake --report results/report.html`: one HTML report with every output marked
# report(...) in the rule files (NLP4Neuro tables and figures: rules/evaluate.smk), grouped
# by category and subcategory, with the captions of report/*.rst and the workflow
# description below. Nothing runs here.


report: "../report/workflow.rst"
