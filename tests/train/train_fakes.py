"""A stand-in for the JobRegistry actor handle (``handle.method.remote(...)``) that records calls."""

from __future__ import annotations


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Method:
    def __init__(self, handle, name):
        self.handle, self.name = handle, name

    def remote(self, *args):
        if self.handle.broken:
            raise RuntimeError("actor died")
        self.handle.calls.append((self.name, args))
        return {"cancel_requested": self.handle.cancel} if self.name == "report_progress" else None


class FakeRegistry:
    """Records every call; ``cancel`` is what report_progress answers; ``broken`` makes calls raise."""

    def __init__(self):
        self.calls: list = []
        self.cancel = False
        self.broken = False

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    def args_of(self, method: str) -> list[tuple]:
        return [args for name, args in self.calls if name == method]

    def events(self) -> list[tuple[str, dict]]:
        return [(args[1], args[2]) for args in self.args_of("add_event")]
