"""The HTTP API (Starlette): ``uvicorn --factory jobrunner.api:create_app``."""

from jobrunner.api.app import create_app

__all__ = ["create_app"]
