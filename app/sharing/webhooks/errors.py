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
    en = ("A police endpoint may narrow its station's jurisdiction to a division (division_id), an outflow city's "
          "to a 户籍地 code prefix (hukou_prefix), never beyond it; the partner must have a jurisdiction.")
    zh = ("公安回调只能在其辖区内指定区划（division_id），流出地回调只能在其户籍地范围内指定代码前缀"
          "（hukou_prefix），不得超出；合作方须已设置辖区。")


class EventTypeRefused(Unprocessable):
    code = "webhook_event_type"
    en = "This kind of partner cannot subscribe to an event type named (resident.moved_out: police only; "\
         "verification, 婚育证明 and assistance events: outflow cities only)."
    zh = "该类合作方不能订阅所列事件类型（迁出事件仅限公安；核查、婚育证明和协查事件仅限流出地）。"


class EventNotDead(Conflict):
    code = "webhook_event_not_dead"
    en = "Only an event that was dead-lettered can be redelivered."
    zh = "只有已进入死信状态的事件可以重新投递。"
