"""OpenAI's file shapes (/v1/files). A ``fine-tune`` file is one of our datasets; a ``fine-tune-results``
file is a job's per-step metrics (CSV), derived from the job when asked for."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .openai import OpenAIList

FilePurpose = Literal["fine-tune", "fine-tune-results"]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: FilePurpose
    status: Literal["processed"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None


class FileList(OpenAIList[FileObject]):
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool
