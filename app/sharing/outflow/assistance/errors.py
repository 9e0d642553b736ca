"""What an outflow city's assistance routes refuse (beyond the cycle's own rules)."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden


class NoCooperationAgreement(Forbidden):
    code = "no_cooperation_agreement"
    en = "This client's 户籍地 is not a partner city with a cooperation agreement for assistance requests."
    zh = "该客户端的户籍地不是签订区域协作协议的伙伴城市，不能办理协查。"


class ReferenceReused(Conflict):
    code = "duplicate_partner_reference"
    en = "A request with this reference exists already with other content."
    zh = "该编号的协查请求已存在且内容不同。"
