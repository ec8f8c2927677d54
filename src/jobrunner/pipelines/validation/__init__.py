"""Marketplace CSV validation and correction: rulesets as data, compiled to polars expressions.

``sniff`` finds encoding and delimiter, ``rules`` loads rulesets (TOML), ``checks`` and
``fixes`` compile them to expressions, ``run`` streams a file through them in batches.
"""
