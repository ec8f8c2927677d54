"""Marketplace CSV validation and correction: rulesets as data, compiled to polars expressions.

``sniff`` finds encoding and delimiter, ``rules`` loads rulesets (TOML), ``reading`` scans the
file, ``screen`` clears the rows that certainly pass, ``checks`` (the full checks) and
``fixes`` compile rulesets to expressions, ``findings`` turns failed checks and duplicate keys
into report rows, ``correct`` applies fixes, and ``run`` streams a file through all of it.
"""
