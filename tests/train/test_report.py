"""ProgressReporter without Ray: throttling, the non-blocking cancel flag, a registry that is down."""

from __future__ import annotations

from sienn_ray.train.report import PENDING, ProgressReporter
from train_fakes import Clock, FakeRegistry


def _reporter(handle, clock, poll=lambda ref: ref):
    return ProgressReporter(lambda: handle, "job_0123456789abcdef", clock=clock, poll=poll)


def _update(step):
    return lambda: ({"step": step}, {"step": step, "epoch": 0.0, "train_loss": 1.0})


def test_reports_at_most_every_two_seconds_and_at_most_once_per_step():
    registry, clock = FakeRegistry(), Clock()
    reporter = _reporter(registry, clock)
    sent = []
    for step in range(1, 41):  # 40 fast steps of 0.25 s
        clock.now += 0.25
        if reporter.tick(_update(step)):
            sent.append(step)
    assert sent[0] == 1 and len(sent) == 5  # 10 s of training: one report per 2 s
    assert all(b - a == 8 for a, b in zip(sent, sent[1:]))
    assert len(registry.args_of("add_loss_point")) == len(registry.args_of("report_progress")) == 5
    slow = _reporter(FakeRegistry(), Clock())
    steps_sent = 0
    for step in range(10):  # slow steps (5 s): one report per step, never more
        slow._clock.now += 5
        steps_sent += slow.tick(_update(step))
    assert steps_sent == 10


def test_the_update_is_built_only_when_a_report_is_due():
    registry, clock = FakeRegistry(), Clock()
    reporter = _reporter(registry, clock)
    built = []

    def build():
        built.append(1)
        return {"step": 1}, None

    reporter.tick(build)
    reporter.tick(build)
    assert len(built) == 1 and registry.args_of("add_loss_point") == []


def test_the_first_step_is_reported_even_right_after_the_start_report():
    registry, clock = FakeRegistry(), Clock()
    reporter = _reporter(registry, clock)
    reporter.report({"step": 0, "message": "Training epoch 1/3"})
    clock.now += 0.1
    assert reporter.tick(_update(1))
    clock.now += 0.1
    assert not reporter.tick(_update(2))


def test_cancel_flag_is_read_from_the_previous_answer_without_blocking():
    registry, clock = FakeRegistry(), Clock()
    answers = {"ready": False}
    reporter = _reporter(registry, clock, poll=lambda ref: ref if answers["ready"] else PENDING)
    registry.cancel = True
    reporter.tick(_update(1))
    assert not reporter.cancel_requested  # the answer has not arrived yet
    answers["ready"] = True
    clock.now += 0.1
    reporter.tick(_update(2))  # not due, but the arrived answer is read
    assert reporter.cancel_requested
    assert len(registry.args_of("report_progress")) == 1


def test_a_registry_that_is_down_never_raises():
    clock = Clock()
    lookups = []

    def lookup():
        lookups.append(clock.now)
        raise ValueError("Failed to look up actor 'sienn-job-registry'")

    reporter = ProgressReporter(lookup, "job_0123456789abcdef", clock=clock, poll=lambda r: r)
    for _ in range(10):
        clock.now += 1
        reporter.report({"step": 1})
        reporter.event("epoch_end", {"epoch": 1})
    assert 1 < len(lookups) <= 3  # looked up again, but not on every call

    registry = FakeRegistry()
    reporter = _reporter(registry, clock)
    registry.broken = True
    reporter.report({"step": 1})
    reporter.event("checkpoint", {})
    registry.broken = False
    reporter.report({"step": 2})
    assert registry.args_of("report_progress")[-1][1] == {"step": 2}


def test_a_lost_answer_is_ignored():
    registry, clock = FakeRegistry(), Clock()

    def poll(ref):
        raise RuntimeError("ActorDiedError")

    reporter = _reporter(registry, clock, poll=poll)
    reporter.report({"step": 1})
    clock.now += 3
    reporter.tick(_update(2))
    assert not reporter.cancel_requested and len(registry.args_of("report_progress")) == 2


def test_events_carry_the_job_id():
    registry, clock = FakeRegistry(), Clock()
    _reporter(registry, clock).event("resumed", {"step": 8})
    assert registry.calls == [("add_event", ("job_0123456789abcdef", "resumed", {"step": 8}, None))]


def test_reports_carry_the_lease_token_and_a_fenced_answer_stops_the_trainer():
    registry, clock = FakeRegistry(), Clock()
    reporter = ProgressReporter(lambda: registry, "job_0123456789abcdef", token=7, clock=clock,
                                poll=lambda ref: {"cancel_requested": True, "fenced": True})
    reporter.report({"step": 1}, {"step": 1, "epoch": 0.0})
    reporter.event("checkpoint", {"step": 1})
    assert [args[-1] for _, args in registry.calls] == [7, 7, 7]
    clock.now += 3
    reporter.tick(_update(2))
    assert reporter.cancel_requested
