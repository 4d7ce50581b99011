"""Benchmarks for mailsift against reference filters on the shared SpamAssassin corpus.

`bench` is a package so that the benchmark scripts share one definition of the corpus split
(`bench.corpus`) and of the figures (`mailsift.training.metrics`). Run the scripts from the
repository root, either as modules (`.venv/bin/python -m bench.score`) or as files
(`.venv/bin/python bench/score.py`); run as a file, a script puts the repository root on
`sys.path` itself, so both forms behave the same.
"""
