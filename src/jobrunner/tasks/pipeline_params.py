"""What each pipeline task accepts, validated at enqueue."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobrunner.pipelines.report import ReportSpec
from jobrunner.pipelines.validation.rules import choose_ruleset
from jobrunner.tasks.inputs import InputUri

__all__ = ["ConnectorParams", "CsvParams", "PdfParams", "ReportParams", "ValidateParams"]

_NAME = r"^[A-Za-z0-9_\-]{1,64}$"


class PdfParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_uri: InputUri
    password: str | None = Field(default=None, max_length=1024)
    max_pages: int | None = Field(default=None, ge=1, le=100_000)
    chunk_chars: int = Field(default=2000, ge=100, le=100_000)


class ReportParams(ReportSpec):
    input_uri: InputUri


class ConnectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=4096)
    format: Literal["csv", "json"] = "csv"
    headers: dict[str, str] = Field(default_factory=dict)


class CsvParams(BaseModel):
    """``ruleset`` picks the rules (a shipped or user ruleset name); ``marketplace`` is its
    deprecated alias, and the two naming different rulesets is an error."""

    model_config = ConfigDict(extra="forbid")

    input_uri: InputUri
    ruleset: str | None = Field(
        default=None, pattern=_NAME, description="Ruleset to check with (default: default)."
    )
    marketplace: str | None = Field(
        default=None, pattern=_NAME, description="Deprecated alias of ruleset."
    )
    category: str | None = Field(default=None, max_length=100)
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    encoding: Literal["utf-8", "utf-8-sig", "cp1252", "latin-1"] | None = None

    @model_validator(mode="after")
    def _one_ruleset(self) -> CsvParams:
        choose_ruleset(self.ruleset, self.marketplace)  # ValueError: they disagree
        return self

    @property
    def ruleset_name(self) -> str:
        return choose_ruleset(self.ruleset, self.marketplace)


class ValidateParams(CsvParams):
    auto_fix: bool = False
