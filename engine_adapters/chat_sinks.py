"""Chat alert sinks: Telegram bot API, Discord and Slack webhooks, each in its own format.

Every chat sink is a `WebhookSink` (engine_adapters/sinks.py) with its own payload and its own
reading of the answer: calling it only enqueues (the tick loop never waits), one background
task POSTs one alert at a time, in order, with exponential backoff and jitter. What differs:

- Telegram: POST {base}/bot<TOKEN>/sendMessage with JSON chat_id, text, parse_mode. Taken:
  200 with `"ok": true`. Rate limited: 429, wait `parameters.retry_after` seconds (body).
  Refused: any other 4xx, or a 2xx with `"ok": false`.
- Discord: POST the webhook URL with JSON content + embeds. Taken: 204 (200 with
  ?wait=true). Rate limited: 429, wait `retry_after` seconds (a float, body), else the
  Retry-After header. Refused: any other 4xx.
- Slack: POST the incoming-webhook URL with JSON text + blocks. Taken: 200 `ok`. Rate limited:
  429, wait Retry-After seconds (header). Refused: any other 4xx (`invalid_payload`,
  `channel_not_found`, ...).

5xx, 408, 425, timeouts and connection errors are retried on every service. A server's wait
is honoured up to `backoff_cap_s`. The bot token is part of Telegram's URL, so logs show the
URL with the token replaced by `<token>`.

The text of an alert is made by ONE function per service (`telegram_payload`,
`discord_payload`, `slack_payload`), from the alert's fields and, when given, its evidence
(`engine_adapters.evidence_text.AlertEvidence`): the evidence sentence ("OI −4.1 % vs 60 s
avg, $3.2 M of longs liquidated (10 s decaying sum), price −2.3 % vs 60 s avg = 4.1σ")
follows the message, and the price, move, OI change, liquidations and funding per hour are
facts beside state and tier, each fact's name carrying its own window ("Move vs 60 s avg").

Config, in the app's TOML beside `[[sinks.webhook]]` (read by `chat_sinks_from_toml`):

    [[sinks.telegram]]
    token = "123456:ABC..."          # from @BotFather
    chat_id = "-1001234567890"       # a user, group or @channelname
    [[sinks.discord]]
    url = "https://discord.com/api/webhooks/ID/TOKEN"
    [[sinks.slack]]
    url = "https://hooks.slack.com/services/T.../B.../..."
    kinds = ["SYSTEMIC_ALERT"]       # optional filter, as for webhooks

Each table also takes timeout_s, max_retries, backoff_base_s, backoff_cap_s, queue_limit.
"""

from __future__ import annotations

import asyncio
import enum
import html
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs

from engine_adapters.evidence_text import AlertEvidence, evidence_facts, evidence_text
from engine_adapters.sinks import RETRY_STATUS, WebhookConfig, WebhookSink, webhooks_from_toml
from engine_adapters.storage.alerts_json import tick_time
from engine_core.alerts import Alert
from engine_core.states import AlertKind

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org"
#: Discord embed colours (0xRRGGBB) by alert kind: escalation reads warmer.
_COLOUR = {AlertKind.STRUCTURAL_FRAGILE: 0xF1C40F, AlertKind.STRUCTURAL_TRIGGER_READY: 0xE67E22,
           AlertKind.STRUCTURAL_UNWIND: 0xE74C3C, AlertKind.SYSTEMIC_ALERT: 0x8E44AD,
           AlertKind.STABLE_15M_ALERT: 0x3498DB}


class ChatService(enum.Enum):
    """Which chat API a sink speaks."""

    #: Telegram bot API, sendMessage.
    TELEGRAM = "telegram"
    #: Discord channel webhook.
    DISCORD = "discord"
    #: Slack incoming webhook.
    SLACK = "slack"


# ---------------------------------------------------------------------------- formatting
def _title(a: Alert) -> str:
    where = "market-wide" if a.token_id < 0 else a.symbol
    return f"{a.kind.name.replace('_', ' ').title()}: {where}"


def _message(a: Alert, ev: AlertEvidence | None) -> str:
    said = evidence_text(ev) if ev is not None else ""
    return f"{a.message}\n{said}" if said else a.message


def _facts(a: Alert, ev: AlertEvidence | None = None) -> list[tuple[str, str]]:
    facts = evidence_facts(ev) if ev is not None else []
    facts += [("State", a.fsm.name if a.fsm is not None else "-"),
              ("Tier", a.tier.name if a.tier is not None else "-"),
              ("Cluster", a.cluster.name), ("Phase", a.phase.name)]
    if a.trigger_cost is not None:
        facts.append(("Trigger cost", f"{a.trigger_cost:.2f}"))
    facts.append(("Tick", f"{a.tick_id} ({tick_time(a.tick_id)})"))
    return facts


def telegram_payload(a: Alert, *, chat_id: str, parse_mode: str = "HTML",
                     evidence: AlertEvidence | None = None) -> dict[str, Any]:
    """sendMessage parameters: bold title, the message, one line per fact (<= 4096 chars)."""
    e = html.escape if parse_mode == "HTML" else str
    bold = (lambda s: f"<b>{e(s)}</b>") if parse_mode == "HTML" else str
    lines = [bold(_title(a)), e(_message(a, evidence)), ""]
    lines += [f"{e(k)}: {e(v)}" for k, v in _facts(a, evidence)]
    payload: dict[str, Any] = {"chat_id": chat_id, "text": "\n".join(lines)[:4096],
                               "disable_web_page_preview": True}
    if parse_mode:
        payload["parse_mode"] = parse_mode
    return payload


def discord_payload(a: Alert, *, evidence: AlertEvidence | None = None) -> dict[str, Any]:
    """Webhook body: a one-line `content` plus one embed with the facts as inline fields."""
    return {
        "content": f"**{_title(a)}**"[:2000],
        "embeds": [{
            "title": _title(a)[:256],
            "description": _message(a, evidence)[:4096],
            "color": _COLOUR.get(a.kind, 0x95A5A6),
            "timestamp": tick_time(a.tick_id),
            "fields": [{"name": k, "value": v[:1024], "inline": True}
                       for k, v in _facts(a, evidence)][:25],
        }],
        "allowed_mentions": {"parse": []},  # an alert never pings anyone by accident
    }


def slack_payload(a: Alert, *, evidence: AlertEvidence | None = None) -> dict[str, Any]:
    """Incoming-webhook body: `text` (the notification fallback) plus header/section blocks."""
    facts = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in _facts(a, evidence)]
    msg = _message(a, evidence)
    return {
        "text": f"{_title(a)}: {msg}"[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _title(a)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": msg[:3000]},
             "fields": facts[:10]},
        ],
    }


# ---------------------------------------------------------------------------- config
@attrs.frozen(kw_only=True)
class ChatConfig:
    """One chat sink: its service, where to POST, and the shared delivery settings."""

    service: ChatService
    #: The POST URL (for Telegram: {base}/bot<TOKEN>/sendMessage).
    url: str
    #: Telegram only: the chat to send to.
    chat_id: str = ""
    #: Telegram only: "HTML", "MarkdownV2" or "" (plain text).
    parse_mode: str = "HTML"
    delivery: WebhookConfig

    @property
    def redacted_url(self) -> str:
        if self.service is ChatService.TELEGRAM and "/bot" in self.url:
            head, _, tail = self.url.partition("/bot")
            return f"{head}/bot<token>/{tail.partition('/')[2]}"
        return self.url


_DELIVERY_KEYS = ("timeout_s", "max_retries", "backoff_base_s", "backoff_cap_s", "queue_limit",
                  "kinds")
_SERVICE_KEYS = {ChatService.TELEGRAM: ("token", "chat_id", "base_url", "parse_mode"),
                 ChatService.DISCORD: ("url",), ChatService.SLACK: ("url",)}


def chat_sinks_from_toml(data: Mapping[str, Any]) -> tuple[ChatConfig, ...]:
    """Every `[[sinks.telegram]]`, `[[sinks.discord]]`, `[[sinks.slack]]` entry, in that order.

    Raises ValueError naming the entry and key, e.g. "sinks.telegram[0]: chat_id is required".
    """
    sinks = data.get("sinks", {})
    if not isinstance(sinks, Mapping):
        raise ValueError("[sinks] must be a table")
    out: list[ChatConfig] = []
    for service in ChatService:
        entries = sinks.get(service.value, [])
        if not isinstance(entries, list):
            raise ValueError(f"sinks.{service.value} must be an array of tables: write "
                             f"[[sinks.{service.value}]]")
        for i, e in enumerate(entries):
            out.append(_entry(service, f"sinks.{service.value}[{i}]", e))
    return tuple(out)


def _entry(service: ChatService, where: str, e: object) -> ChatConfig:
    if not isinstance(e, Mapping):
        raise ValueError(f"{where} must be a table")
    known = (*_SERVICE_KEYS[service], *_DELIVERY_KEYS)
    unknown = sorted(set(e) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    own = {k: e[k] for k in _SERVICE_KEYS[service] if k in e}
    for k, v in own.items():
        if not isinstance(v, str | int) or isinstance(v, bool):
            raise ValueError(f"{where}: {k} must be a string, got {v!r}")
    if service is ChatService.TELEGRAM:
        for key in ("token", "chat_id"):
            if not str(own.get(key, "")).strip():
                raise ValueError(f"{where}: {key} is required")
        base = str(own.get("base_url", TELEGRAM_API)).rstrip("/")
        url = f"{base}/bot{own['token']}/sendMessage"
        mode = str(own.get("parse_mode", "HTML"))
        if mode not in ("HTML", "MarkdownV2", ""):
            raise ValueError(f"{where}: parse_mode must be \"HTML\", \"MarkdownV2\" or \"\", "
                             f"got {mode!r}")
    else:
        if "url" not in own:
            raise ValueError(f"{where}: url is required")
        url, mode = str(own["url"]), ""
    # The delivery settings are checked exactly as for [[sinks.webhook]].
    delivery = {"url": url, **{k: e[k] for k in _DELIVERY_KEYS if k in e}}
    try:
        (cfg,) = webhooks_from_toml({"sinks": {"webhook": [delivery]}})
    except ValueError as exc:
        msg = str(exc).removeprefix("sinks.webhook[0]: ")
        if service is ChatService.TELEGRAM:
            msg = msg.replace(str(own.get("token", "")), "<token>")
        raise ValueError(f"{where}: {msg}") from None
    return ChatConfig(service=service, url=url, chat_id=str(own.get("chat_id", "")),
                      parse_mode=mode, delivery=cfg)


# ---------------------------------------------------------------------------- the sink
class Verdict(enum.Enum):
    """What an answer means for the alert being sent."""

    #: The service took it.
    DELIVERED = "delivered"
    #: The service refused it (bad token, unknown chat, malformed payload): do not retry.
    REFUSED = "refused"
    #: Busy, rate limited or failing: try again later.
    RETRY = "retry"


def read_answer(service: ChatService, status: int, body: bytes,
                headers: Mapping[str, str]) -> tuple[Verdict, float | None, str]:
    """(verdict, seconds the service asks to wait or None, a short reason) of one answer."""
    doc: Any = None
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    text = body[:200].decode("utf-8", "replace")
    wait = _seconds(headers.get("Retry-After"))
    if service is ChatService.TELEGRAM and isinstance(doc, dict):
        params = doc.get("parameters")
        if isinstance(params, dict) and _seconds(params.get("retry_after")) is not None:
            wait = _seconds(params.get("retry_after"))
        text = str(doc.get("description", text))
        if 200 <= status < 300 and doc.get("ok") is not True:
            return Verdict.REFUSED, None, f"HTTP {status} with ok=false: {text}"
    if service is ChatService.DISCORD and isinstance(doc, dict):
        if _seconds(doc.get("retry_after")) is not None:
            wait = _seconds(doc.get("retry_after"))
        text = str(doc.get("message", text))
    if 200 <= status < 300:
        return Verdict.DELIVERED, None, f"HTTP {status}"
    if 400 <= status < 500 and status not in RETRY_STATUS:
        return Verdict.REFUSED, None, f"HTTP {status}: {text}"
    return Verdict.RETRY, wait, f"HTTP {status}: {text}"


def _seconds(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float | str):  # JSON gives no others
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None


class ChatSink(WebhookSink):
    """Sends alerts to one chat service; calling it only enqueues (see WebhookSink)."""

    def __init__(self, config: ChatConfig, *, seed: int = 0) -> None:
        d = config.delivery
        # The parent only logs its url: give it the redacted one, keep the real one here.
        super().__init__(config.redacted_url, timeout_s=d.timeout_s, max_retries=d.max_retries,
                         backoff_base_s=d.backoff_base_s, backoff_cap_s=d.backoff_cap_s,
                         queue_limit=d.queue_limit, kinds=d.kinds, seed=seed)
        self.chat = config

    @classmethod
    def from_config(cls, cfg: WebhookConfig | ChatConfig, *, seed: int = 0) -> ChatSink:
        if not isinstance(cfg, ChatConfig):
            raise TypeError("a ChatSink is built from a ChatConfig (chat_sinks_from_toml); "
                            "a plain WebhookConfig makes a WebhookSink")
        return cls(cfg, seed=seed)

    def payload(self, alert: Alert, evidence: AlertEvidence | None = None) -> dict[str, Any]:
        """The request body for `alert` (and its evidence) in this service's format."""
        c = self.chat
        if c.service is ChatService.TELEGRAM:
            return telegram_payload(alert, chat_id=c.chat_id, parse_mode=c.parse_mode,
                                    evidence=evidence)
        if c.service is ChatService.DISCORD:
            return discord_payload(alert, evidence=evidence)
        return slack_payload(alert, evidence=evidence)

    async def _deliver(self, alert: Alert, evidence: AlertEvidence | None = None) -> None:
        """Send one alert until the service takes it, refuses it, or it is abandoned."""
        assert self._session is not None
        cfg, name = self.config, self.chat.redacted_url
        body = json.dumps(self.payload(alert, evidence), separators=(",", ":")).encode()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                async with self._session.post(self.chat.url, data=body) as resp:
                    answer = await resp.read()
                    verdict, wait, what = read_answer(self.chat.service, resp.status, answer,
                                                      resp.headers)
                if verdict is Verdict.DELIVERED:
                    self._delivered += 1
                    return
                if verdict is Verdict.REFUSED:
                    self._failed += 1
                    self._rejected += 1
                    log.error("%s %s refused alert %s (tick %d): %s; not retried (check the "
                              "token, chat or url)", self.chat.service.value, name,
                              alert.kind.name, alert.tick_id, what)
                    return
            except (aiohttp.ClientError, TimeoutError) as exc:
                what = type(exc).__name__
            self._failed += 1
            if cfg.max_retries is not None and attempt >= cfg.max_retries:
                self._abandoned += 1
                log.error("%s %s: gave up on alert %s (tick %d) after %d attempts (%s)",
                          self.chat.service.value, name, alert.kind.name, alert.tick_id,
                          attempt + 1, what)
                return
            self._retries += 1
            delay = self._backoff(attempt, wait)
            if attempt == 0 or attempt % 10 == 0:
                log.warning("%s %s: %s; retry %d in %.2f s", self.chat.service.value, name,
                            what, attempt + 1, delay)
            attempt += 1
            await asyncio.sleep(delay)


def chat_sinks(data: Mapping[str, Any], *, seed: int = 0) -> list[ChatSink]:
    """A started-later `ChatSink` for every chat table of an already-parsed TOML document."""
    return [ChatSink(c, seed=seed) for c in chat_sinks_from_toml(data)]


__all__ = ["TELEGRAM_API", "ChatConfig", "ChatService", "ChatSink", "Verdict", "chat_sinks",
           "chat_sinks_from_toml", "discord_payload", "read_answer", "slack_payload",
           "telegram_payload"]
