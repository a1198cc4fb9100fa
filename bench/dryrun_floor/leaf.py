"""Never run: the floor workflow is only dry-run."""
raise SystemExit("bench/dryrun_floor is for dry runs only")
