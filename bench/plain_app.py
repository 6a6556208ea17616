"""The peer of bench/api_load.py: a plain FastAPI app under plain uvicorn, same FastAPI as the API.

    python bench/plain_app.py --port 8123

``/health`` answers what the real API's ``/health`` answers (the same pydantic model
and field values), so the load bench compares the serving stacks, not the handlers.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="plain peer")


class Health(BaseModel):
    status: str
    timestamp: datetime


@app.get("/health", response_model=Health)
async def health():
    return Health(status="healthy", timestamp=datetime.now(timezone.utc))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", default="bench.plain_app:app", help="import path of the ASGI app to serve")
    parser.add_argument("--factory", action="store_true", help="--app names a function that builds the app")
    args = parser.parse_args()
    # Serve's proxy also runs uvicorn with one worker in one process; keep-alive like wrk expects.
    uvicorn.run(args.app, host="127.0.0.1", port=args.port, factory=args.factory, log_level="warning",
                access_log=False)
