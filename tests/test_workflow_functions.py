import inspect

from snakemake.common import get_function_params, get_input_function_aux_params

from pipeline.workflow_functions import per_job


def test_per_job_declares_the_parameters_snakemake_reads_and_passes_the_same_arguments():
    def plain(wildcards, input, threads):
        return wildcards, input, threads

    @per_job
    def declared(wildcards, input, threads):
        return wildcards, input, threads

    assert list(get_function_params(declared)) == list(inspect.signature(plain).parameters) == [
        "wildcards", "input", "threads"]
    candidates = {"input": ["a.h5"], "output": ["b.h5"], "threads": 2, "resources": {}}
    assert get_input_function_aux_params(declared, candidates) == get_input_function_aux_params(plain, candidates) == {
        "input": ["a.h5"], "threads": 2}


def test_snakemake_reads_a_per_job_functions_parameters_without_inspect_signature(monkeypatch):
    # the point of per_job: if Snakemake stopped reading the declared parameters, this fails
    function = per_job(lambda wildcards: wildcards)

    def no_signature(*args, **kwargs):
        raise AssertionError("inspect.signature called")

    monkeypatch.setattr(inspect, "signature", no_signature)
    assert list(get_function_params(function)) == ["wildcards"]
    assert get_input_function_aux_params(function, {"input": [], "threads": 1}) == {}
