"""The delegate's protocol decisions, without a socket: messages in, actions out."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.http11 import Response

from agent.connection import (
    MAX_ERROR_RESENDS,
    AbortTask,
    AckTask,
    Close,
    DelegateConnection,
    DropTask,
    RewindOutbox,
    RewindTask,
    Send,
    StartTask,
    State,
    parse_frame,
)
from agent.errors import ConnectionStateError, ManagerNotTrusted, UnreadableFrame
from agent.reconnect import Backoff, backoff, fatal_error, is_retryable
from wire.protocol import (
    Abort,
    Accept,
    Ack,
    Assign,
    Disconnect,
    Draining,
    Error,
    Heartbeat,
    HeartbeatAck,
    Pull,
    Refused,
    Register,
    Registered,
    Reject,
    Resend,
    TaskSpec,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def register(**kw: object) -> Register:
    fields: dict[str, object] = dict(
        auth="jwt", protocol_versions=[1], account_id="acme", name="d1", tags=["x"],
        version="t", hostname="h", instance_id="i-1", capacity=4, task_types=["test.echo"])
    return Register.model_validate(fields | kw)


def registered(**kw: object) -> Registered:
    fields: dict[str, object] = dict(protocol_version=1, delegate_id="dlg-1",
                                     heartbeat_interval=2.0, lease_ttl=30.0)
    return Registered.model_validate(fields | kw)


def open_connection(*, free_slots: int = 4) -> DelegateConnection:
    conn = DelegateConnection()
    conn.connected(register())
    conn.receive(registered(), now=100.0, free_slots=free_slots)
    assert conn.state is State.OPEN
    return conn


# --------------------------------------------------------------------------- registration


def test_registration_sends_register_then_pulls_for_its_free_slots() -> None:
    conn = DelegateConnection()
    assert conn.state is State.CONNECTING
    [sent] = conn.connected(register())
    assert isinstance(sent, Send) and isinstance(sent.message, Register)
    assert sent.message.draining is False
    assert conn.state is State.REGISTERING
    actions = conn.receive(registered(), now=100.0, free_slots=3)
    assert actions == [RewindOutbox({}), Send(Pull(free_slots=3))]
    assert conn.state is State.OPEN
    assert (conn.delegate_id, conn.heartbeat_interval) == ("dlg-1", 2.0)
    assert conn.readiness(100.0) == (True, "ready")


def test_resume_rewinds_to_the_acked_sequences_and_stops_cancelled_tasks() -> None:
    conn = DelegateConnection()
    conn.connected(register(running_tasks=["t-1", "t-2", "t-gone"]))
    actions = conn.receive(registered(acked={"t-1": 7, "t-2": 0},
                                      cancel={"t-gone": "task already LOST"}),
                           now=0.0, free_slots=1)
    assert actions == [
        AbortTask("t-gone", "task already LOST", report=False), DropTask("t-gone"),
        RewindOutbox({"t-1": 7, "t-2": 0}),
        Send(Pull(free_slots=1)),
    ]


def test_over_the_log_service_acks_on_resume_only_confirm() -> None:
    conn = DelegateConnection(send_task_messages=False)
    conn.connected(register())
    actions = conn.receive(registered(acked={"t-1": 7}), now=0.0, free_slots=1)
    assert actions == [AckTask("t-1", 7), Send(Pull(free_slots=1))]


@pytest.mark.parametrize(("answer", "fatal", "reason"), [
    (Refused(reason="token revoked (id 3f2a)"), True,
     "manager refused this delegate: token revoked (id 3f2a)"),
    (Refused(reason="manager starting", fatal=False), False, "manager starting"),
    (HeartbeatAck(received_at=NOW), False, "expected 'registered', got 'heartbeat_ack'"),
])
def test_an_answer_other_than_registered_ends_the_connection(
        answer: Refused | HeartbeatAck, fatal: bool, reason: str) -> None:
    conn = DelegateConnection()
    conn.connected(register())
    assert conn.receive(answer, now=0.0, free_slots=1) == [Close(reason, fatal=fatal)]
    assert conn.state is (State.CLOSED if fatal else State.CONNECTING)
    assert not conn.registered


def test_an_unreadable_answer_to_register_means_try_again() -> None:
    conn = DelegateConnection()
    conn.connected(register())
    [close] = conn.unreadable(UnreadableFrame("Invalid JSON"), 10)
    assert close == Close("unreadable answer to register: Invalid JSON")
    assert conn.state is State.CONNECTING


def test_an_unreadable_frame_in_a_session_is_skipped_and_logged() -> None:
    conn = open_connection()
    with capture_logs() as logs:
        assert conn.unreadable(UnreadableFrame("Invalid JSON"), 10) == []
    assert logs[0]["event"] == "unreadable message from manager; ignored"
    assert conn.state is State.OPEN


def test_a_lost_socket_goes_back_to_connecting_and_registers_again() -> None:
    conn = open_connection()
    conn.lost()
    assert conn.state is State.CONNECTING
    assert conn.readiness(100.0) == (False, "not connected to the manager")
    assert conn.pull(free_slots=2) == []  # nobody to ask
    conn.connected(register())
    assert conn.state is State.REGISTERING


def test_illegal_transitions_name_both_states() -> None:
    conn = open_connection()
    with pytest.raises(ConnectionStateError, match="from open to registering"):
        conn.connected(register())
    conn.stop()
    conn.lost()  # CLOSED stays CLOSED
    assert conn.state is State.CLOSED


def test_a_message_outside_a_session_is_ignored() -> None:
    conn = DelegateConnection()
    assert conn.receive(Ack(task_id="t", seq=1), now=0.0, free_slots=1) == []


# --------------------------------------------------------------------------- in a session


def test_assign_starts_the_task_and_the_outcome_is_accept_or_reject() -> None:
    conn = open_connection()
    spec = TaskSpec(task_id="t-1", type="test.echo")
    assert conn.receive(Assign(task=spec), now=0.0, free_slots=1) == [StartTask(spec)]
    assert conn.task_started(spec, None) == [Send(Accept(task_id="t-1"))]
    assert conn.task_started(spec, "no free slot") == [
        Send(Reject(task_id="t-1", reason="no free slot"))]


def test_ack_and_abort() -> None:
    conn = open_connection()
    assert conn.receive(Ack(task_id="t-1", seq=5), now=0.0, free_slots=1) == [
        AckTask("t-1", 5)]
    assert conn.receive(Abort(task_id="t-1", reason="aborted by user"), now=0.0,
                        free_slots=1) == [AbortTask("t-1", "aborted by user")]


def test_resend_rewinds_that_task_after_the_given_sequence() -> None:
    conn = open_connection()
    with capture_logs() as logs:
        actions = conn.receive(Resend(task_id="t-1", after_seq=41), now=0.0, free_slots=1)
    assert actions == [RewindTask("t-1", 41)]
    assert logs[0]["event"] == "manager asked for messages again"


def test_an_error_about_a_task_resends_it_a_few_times_until_the_manager_acks() -> None:
    conn = open_connection()
    error = Error(reason="the manager failed to handle this task_msg message "
                         "(OperationalError); send it again", task_id="t-1")
    for _ in range(MAX_ERROR_RESENDS):
        assert conn.receive(error, now=0.0, free_slots=1) == [RewindTask("t-1", None)]
    # A manager that keeps refusing this task's messages gets no resend storm...
    assert conn.receive(error, now=0.0, free_slots=1) == []
    # ...and progress (an ack) gives the task its resends back.
    conn.receive(Ack(task_id="t-1", seq=3), now=0.0, free_slots=1)
    assert conn.receive(error, now=0.0, free_slots=1) == [RewindTask("t-1", None)]
    # An error about no task in particular is only logged.
    with capture_logs() as logs:
        assert conn.receive(Error(reason="message is not JSON"), now=0.0, free_slots=1) == []
    assert logs[0]["log_level"] == "warning"


@pytest.mark.parametrize(("fatal", "state", "reason"), [
    (True, State.CLOSED, "manager disconnected this delegate: token revoked"),
    (False, State.CONNECTING, "token revoked"),
])
def test_disconnect(fatal: bool, state: State, reason: str) -> None:
    conn = open_connection()
    actions = conn.receive(Disconnect(reason="token revoked", fatal=fatal), now=0.0,
                           free_slots=1)
    assert actions == [Close(reason, fatal=fatal)]
    assert conn.state is state


def test_heartbeats_and_readiness_follow_the_manager_answers() -> None:
    conn = open_connection()  # registered at t=100, interval 2 s
    assert conn.heartbeat(["t-1"], NOW) == [
        Send(Heartbeat(running_tasks=["t-1"], sent_at=NOW))]
    assert conn.readiness(105.0) == (True, "ready")
    assert conn.readiness(105.1) == (
        False, "manager has not answered a heartbeat in two intervals")
    conn.receive(HeartbeatAck(received_at=NOW), now=105.1, free_slots=1)
    assert conn.readiness(105.2) == (True, "ready")


# --------------------------------------------------------------------------- drain


def test_drain_tells_a_connected_manager_at_once_and_stops_pulling() -> None:
    conn = open_connection()
    assert conn.drain() == [Send(Draining())]
    assert conn.state is State.DRAINING
    assert conn.pull(free_slots=3) == []
    assert conn.readiness(100.0) == (False, "draining")
    # Still a session: messages and heartbeats go on while tasks finish.
    assert conn.receive(Ack(task_id="t", seq=1), now=0.0, free_slots=0) == [AckTask("t", 1)]
    assert conn.heartbeat([], NOW) != []


def test_drain_while_disconnected_is_said_on_registration() -> None:
    conn = open_connection()
    conn.lost()
    assert conn.drain() == []
    [sent] = conn.connected(register())
    assert isinstance(sent, Send) and isinstance(sent.message, Register)
    assert sent.message.draining is True
    actions = conn.receive(registered(), now=0.0, free_slots=0)
    assert actions[-1] == Send(Draining())
    assert conn.state is State.DRAINING


# --------------------------------------------------------------------------- frames


def test_frames_that_do_not_parse_say_why_in_one_line() -> None:
    for raw in ["not json {", '{"type": "launch"}', '{"type": "ack", "task_id": 5}']:
        with pytest.raises(UnreadableFrame) as err:
            parse_frame(raw)
        assert "\n" not in str(err.value)
    assert parse_frame('{"type": "ack", "task_id": "t", "seq": 2}') == Ack(task_id="t",
                                                                             seq=2)


def test_a_deeply_nested_frame_is_unreadable_not_a_recursion_error() -> None:
    depth = 100_000
    raw = ('{"type": "assign", "task": {"task_id": "t", "type": "x", "params": {"a": '
           + "[" * depth + "]" * depth + "}}}")
    with pytest.raises(UnreadableFrame, match="recursion limit"):
        parse_frame(raw)


# --------------------------------------------------------------------------- reconnect


def test_backoff_grows_with_full_jitter_up_to_the_cap() -> None:
    delays = backoff(0.5, 60.0, rand=lambda: 1.0)
    assert [next(delays) for _ in range(10)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    jittered = backoff(0.5, 60.0, rand=lambda: 0.25)
    assert [next(jittered) for _ in range(3)] == [0.125, 0.25, 0.5]


def test_backoff_starts_over_after_a_healthy_connection() -> None:
    policy = Backoff(0.5, 60.0, healthy_period=30.0, rand=lambda: 1.0)
    assert [policy.after(1.0) for _ in range(4)] == [0.5, 1, 2, 4]
    # A connection that stayed up 30 s: reconnect at once, then from the start again.
    assert policy.after(30.0) == 0.0
    assert [policy.after(1.0) for _ in range(2)] == [0.5, 1]


def _cert_error() -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "unable to get local issuer certificate"
    return err


def test_which_errors_are_retried() -> None:
    assert is_retryable(ConnectionRefusedError(111, "Connect call failed"))
    assert is_retryable(TimeoutError())
    assert is_retryable(ConnectionClosedError(None, None))
    assert is_retryable(ssl.SSLError(1, "wrong version number"))
    assert not is_retryable(_cert_error())
    assert not is_retryable(KeyError("a bug"))
    assert is_retryable(InvalidStatus(Response(502, "Bad Gateway", Headers())))


def test_an_untrusted_certificate_says_what_to_set() -> None:
    error = fatal_error(_cert_error())
    assert isinstance(error, ManagerNotTrusted)
    assert "unable to get local issuer certificate" in str(error)
    assert "MANAGER_CA_BUNDLE" in str(error)
    bug = KeyError("x")
    assert fatal_error(bug) is bug
