"""The project's command line, `llm-cost-ops-ops` (a console script of the package).

- `llm-cost-ops-ops run OPERATION [ENV] [-c FILE]... [--partition P] [--tag K=V]... [-v]`: the job
  `OPERATION_ENV` (or `OPERATION` alone) submitted to the instance at DAGSTER_HOME, followed to its
  end, with a summary last (cli/run.py).
- `llm-cost-ops-ops dev`: `dagster dev` that stops, with every process it started, on Ctrl-C or
  SIGTERM (cli/dev.py).
"""
