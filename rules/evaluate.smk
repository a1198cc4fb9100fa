# NLP4Neuro evaluation (pipeline.stats, pipeline.report): the metrics files of one
# experiment -> a paper table (CSV + LaTeX + Markdown) and figure (PDF + PNG). Which
# experiment plays which role: the `evaluation` config section (pipeline.stats.config).
# Every rule here is cheap and local; its inputs are exactly the files of the jobs it
# aggregates, so adding a fish reruns these aggregates and that fish's jobs only.
include: "evaluation_common.smk"


localrules:
    evaluate_model_comparison,
    evaluate_pretrained_vs_untrained,
    evaluate_embeddings,
    plot_test_traces,


rule evaluate_model_comparison:
    """Table 1 (jobs of the model_table experiment) + Fig. 2a (model_comparison experiment):
    per model x seq_len, RMSE and tail-sum Pearson r (mean ± SEM over fish x runs, n), each
    model against the best of its seq_len (paper: Mann-Whitney U, Holm; fish level: mixed
    model, bootstrap CIs over fish)."""
    input:
        metrics=evaluation_metrics("model_comparison"),
        table_metrics=evaluation_metrics("model_table"),
    output:
        csv=table_file("model_comparison", "csv", "../report/table1_model_comparison.rst"),
        tex=table_file("model_comparison", "tex"),
        md=table_file("model_comparison", "md"),
        pdf=figure_file("fig2a_rmse_vs_seq_len", "pdf"),
        png=figure_file("fig2a_rmse_vs_seq_len", "png", "../report/fig2a_rmse_vs_seq_len.rst"),
    params:
        role="model_comparison",
        settings=lambda wildcards: evaluation_settings("model_comparison"),
    log:
        f"{LOGS}/evaluate_model_comparison/evaluate_model_comparison.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_model_comparison/evaluate_model_comparison.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/evaluate_experiment.py"


rule evaluate_pretrained_vs_untrained:
    """Table 2 + Fig. 2b: pretrained vs untrained per model and seq_len, twins paired by
    (fish, run) (same seed), Wilcoxon signed-rank, Holm over the table."""
    input:
        metrics=evaluation_metrics("pretrained_vs_untrained"),
    output:
        csv=table_file("pretrained_vs_untrained", "csv", "../report/table2_pretrained_vs_untrained.rst"),
        tex=table_file("pretrained_vs_untrained", "tex"),
        md=table_file("pretrained_vs_untrained", "md"),
        pdf=figure_file("fig2b_pretrained_vs_untrained", "pdf"),
        png=figure_file("fig2b_pretrained_vs_untrained", "png", "../report/fig2b_pretrained_vs_untrained.rst"),
    params:
        role="pretrained_vs_untrained",
        settings=lambda wildcards: evaluation_settings("pretrained_vs_untrained"),
    log:
        f"{LOGS}/evaluate_pretrained_vs_untrained/evaluate_pretrained_vs_untrained.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_pretrained_vs_untrained/evaluate_pretrained_vs_untrained.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/evaluate_experiment.py"


rule evaluate_embeddings:
    """Table 3 + Fig. 3: embedding strategies per model, each against the model's best
    strategy (Mann-Whitney U, Holm within model and seq_len)."""
    input:
        metrics=evaluation_metrics("embeddings"),
    output:
        csv=table_file("embeddings", "csv", "../report/table3_embeddings.rst"),
        tex=table_file("embeddings", "tex"),
        md=table_file("embeddings", "md"),
        pdf=figure_file("fig3_embeddings", "pdf"),
        png=figure_file("fig3_embeddings", "png", "../report/fig3_embeddings.rst"),
    params:
        role="embeddings",
        settings=lambda wildcards: evaluation_settings("embeddings"),
    log:
        f"{LOGS}/evaluate_embeddings/evaluate_embeddings.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_embeddings/evaluate_embeddings.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/evaluate_experiment.py"


rule plot_test_traces:
    """Fig. 2c: the trace fish's test-set tail sum, ground truth vs each model's prediction
    (mean over runs, 95% CI over runs), at the trace window length."""
    input:
        predictions=[path for paths in trace_predictions().values() for path in paths],
    output:
        pdf=figure_file(TRACE_FIGURE, "pdf"),
        png=figure_file(TRACE_FIGURE, "png", "../report/fig2c_test_traces.rst"),
    params:
        predictions_by_model=trace_predictions(),
        fish=EVALUATION.trace_fish,
        seq_len=EVALUATION.trace_seq_len,
        n_frames=EVALUATION.trace_frames,
    log:
        f"{LOGS}/plot_test_traces/plot_test_traces.log",
    benchmark:
        f"{BENCHMARKS}/plot_test_traces/plot_test_traces.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/plot_test_traces.py"
