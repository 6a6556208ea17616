"""Chat records in the format of OpenAI's fine-tuning guide, checked the way that guide checks them.

One record is ``{"messages": [{"role", "content", "name"?, "weight"?}, ...]}``. The
guide's data-preparation checks (its cookbook counts them as ``data_type``,
``missing_messages_list``, ``message_missing_key``, ``message_unrecognized_key``,
``unrecognized_role``, ``missing_content``, ``example_missing_assistant_message``)
are all here, plus what its format states: the conversation ends with the
assistant's reply, and ``weight`` (0 or 1, assistant messages only) says whether
that reply is trained on. Every problem of a record is reported, not just the first.

Tool and function calling is part of OpenAI's format but not of what we train, so
those keys are refused by name rather than silently dropped.
"""

from __future__ import annotations

from json.encoder import encode_basestring as quote
from typing import Any, NamedTuple

CHAT_ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")
TOOL_MESSAGE_KEYS = ("function_call", "tool_calls", "tool_call_id")
TOOL_RECORD_KEYS = ("tools", "functions")
TOOL_ROLES = ("tool", "function")


class Turn(NamedTuple):
    """One checked message: what training renders. ``weight`` 0 means the turn is context only."""

    role: str
    content: str
    weight: int = 1


def check_record_keys(record: dict) -> list[str]:
    """Problems with a chat record's top-level keys (tool definitions cannot be trained here)."""
    return [f"{key!r} (tool/function definitions) is not supported: only plain conversations are trained"
            for key in TOOL_RECORD_KEYS if record.get(key)]


def check_messages(messages: Any) -> tuple[list[Turn] | None, list[str]]:
    """The conversation's turns, or the problems found in it (all of them; turns is None when any)."""
    if not isinstance(messages, list) or not messages:
        return None, ["'messages' must be a non-empty list of {role, content} objects"]
    turns, problems = [], []
    for i, message in enumerate(messages, 1):
        turn, found = _check_message(i, message)
        problems += found
        if turn is not None:
            turns.append(turn)
    if not problems:
        problems += _check_conversation(turns)
    return (None if problems else turns), problems


def _check_message(i: int, message: Any) -> tuple[Turn | None, list[str]]:
    if not isinstance(message, dict):
        return None, [f"message {i} is {json_type(message)}, expected an object"]
    problems = []
    role = message.get("role")
    if "role" not in message:
        problems.append(f"message {i} has no role")
    elif role in TOOL_ROLES:
        problems.append(f"message {i} has role {role!r}: tool and function messages are not supported")
    elif role not in CHAT_ROLES:
        problems.append(f"message {i} has role {role!r}; expected one of {', '.join(CHAT_ROLES)}")
    for key in message:
        if key in TOOL_MESSAGE_KEYS:
            problems.append(f"message {i} has {key!r}: tool and function calls are not supported")
        elif key not in MESSAGE_KEYS:
            problems.append(f"message {i} has an unrecognized key {key!r} (allowed: {', '.join(MESSAGE_KEYS)})")
    content, problem = _content(i, message)
    if problem:
        problems.append(problem)
    if "name" in message and type(message["name"]) is not str:
        problems.append(f"message {i} name is {json_type(message['name'])}, expected a string")
    weight, problem = _weight(i, message, role)
    if problem:
        problems.append(problem)
    if problems:
        return None, problems
    return Turn(role, content, weight), []


def _content(i: int, message: dict) -> tuple[str, str | None]:
    """The message's text: a string, or a list of text parts joined (images cannot be trained here)."""
    content = message.get("content")
    if content is None:
        return "", f"message {i} has no content"
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" and type(p.get("text")) is str for p in content):
            return "", f"message {i} content parts must all be {{\"type\": \"text\", \"text\": ...}}"
        content = "".join(p["text"] for p in content)
    elif type(content) is not str:
        return "", f"message {i} content is {json_type(content)}, expected a string"
    if not content.strip():
        return "", f"message {i} has empty content"
    return content, None


def _weight(i: int, message: dict, role: Any) -> tuple[int, str | None]:
    if "weight" not in message:
        return 1, None
    weight = message["weight"]
    if role != "assistant":
        return 1, f"message {i} has a weight, but only assistant messages may have one"
    if type(weight) not in (int, float) or weight not in (0, 1):
        return 1, f"message {i} weight must be 0 or 1, got {weight!r}"
    return int(weight), None


def _check_conversation(turns: list[Turn]) -> list[str]:
    if not any(t.role == "assistant" for t in turns):
        return ["no assistant message"]
    problems = []
    if turns[-1].role != "assistant":
        problems.append(f"the last message must be the assistant's reply (it is a {turns[-1].role} message)")
    if not any(t.role == "assistant" and t.weight for t in turns):
        problems.append("every assistant message has weight 0: nothing to train on")
    return problems


def normalized_record(turns: list[Turn]) -> str:
    """The record as the trainer reads it: role and content, and ``weight`` only where it is 0."""
    body = ",".join(f'{{"role":"{t.role}","content":{quote(t.content)}' + ('}' if t.weight else ',"weight":0}')
                    for t in turns)
    return f'{{"messages":[{body}]}}\n'


def json_type(value: Any) -> str:
    """How a JSON value is named in messages: an object, an array, a string, a number, ..."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
