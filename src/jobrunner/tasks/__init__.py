"""Thin async task adapters over pure code: demo, pipelines, maintenance."""
