"""`live` and `demo` start the chat sinks of their config next to the webhooks, and stop them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine_adapters.chat_sinks import ChatSink
from engine_app.cli_support import InputError
from engine_app.commands_live import Output
from tests.sinks.chat_servers import ChatServer, serving
from tests.sinks.test_chat_sinks import alert, toml_for

Run = Callable[..., Any]


@pytest.mark.parametrize("service", ["telegram", "discord", "slack"])
def test_the_commands_output_delivers_to_the_configured_chat(arun: Run, service: str,
                                                             capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    server = ChatServer(service, ["ok", "ok"])

    async def main() -> Output:
        async with serving(server):
            out = Output(as_json=True, app=toml_for(service, server.url), title="t")

            async def body() -> Any:
                for sink in out.sinks:  # what the session does with a tick's alerts
                    sink([alert(1), alert(2)])
                return None

            await out.around(body)  # starts the sinks, runs, drains and stops them
            return out

    out = arun(main())
    chats = [w for w in out.webhooks if isinstance(w, ChatSink)]
    assert len(chats) == 1 and chats[0].stats.delivered == 2
    assert server.accepted == [chats[0].payload(alert(1)), chats[0].payload(alert(2))]


def test_a_bad_chat_table_is_an_input_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"sinks\.telegram\[0\]"):
        Output(as_json=True, app={"sinks": {"telegram": [{"token": "1:x"}]}}, title="t")
