"""Refusals of the webhook administration."""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


class WebhookUrlRefused(Unprocessable):
    code = "webhook_url_refused"
    en = "A webhook URL must be https (http only to this machine, outside production), without credentials."
    zh = "回调地址必须使用 https（仅在非生产环境下可用 http 指向本机），且不得包含账号密码。"


class NotAPartner(Unprocessable):
    code = "webhook_partner_role"
    en = "A webhook belongs to a partner account (police or outflow city)."
    zh = "回调只能属于合作方账号（公安或流出地）。"


class CoverageMismatch(Unprocessable):
    code = "webhook_coverage"
    en = "A police endpoint covers a division (division_id); an outflow city's a 户籍地 code prefix (hukou_prefix)."
    zh = "公安回调须指定辖区（division_id），流出地回调须指定户籍地代码前缀（hukou_prefix）。"


class EventNotDead(Conflict):
    code = "webhook_event_not_dead"
    en = "Only an event that was dead-lettered can be redelivered."
    zh = "只有已进入死信状态的事件可以重新投递。"
