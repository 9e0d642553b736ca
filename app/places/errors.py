"""What the places domain refuses (divisions, dwellings, imports)."""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


class DivisionCodeInvalid(Unprocessable):
    code = "division_code_invalid"
    en = ("The code does not have the format of its level: city 6 digits ending 00, district 6 digits, "
          "street 9 digits, community 12 digits, grid 1–20 letters, digits or '-'.")
    zh = "区划代码格式与级别不符：市6位且以00结尾，区县6位，街道9位，社区12位，网格为1–20位字母、数字或“-”。"


class DivisionCodeMismatch(Unprocessable):
    code = "division_code_mismatch"
    en = ("The code does not extend its parent's code (a district shares the city's first 4 digits, a street "
          "starts with the district code, a community with the street code).")
    zh = "区划代码与上级代码不一致（区县与市前4位相同，街道以区县代码开头，社区以街道代码开头）。"


class DivisionParentLevel(Unprocessable):
    code = "division_parent_level"
    en = "The parent must be exactly one level up; a city has no parent."
    zh = "上级区划必须恰好高一级；市没有上级。"


class CommunityTypeRequired(Unprocessable):
    code = "community_type_required"
    en = "A community needs its demonstration type."
    zh = "社区必须填写示范类型。"


class CommunityTypeForbidden(Unprocessable):
    code = "community_type_forbidden"
    en = "Only communities have a demonstration type."
    zh = "只有社区才有示范类型。"


class DivisionCodeTaken(Conflict):
    code = "division_code_taken"
    en = "The parent already has a division with this code."
    zh = "上级区划下已有相同代码的区划。"


class DivisionParentInactive(Conflict):
    code = "division_parent_inactive"
    en = "An active division needs an active parent."
    zh = "上级区划已停用，不能在其下启用区划。"


class DivisionInUse(Conflict):
    code = "division_in_use"
    en = "The division still has active children or dwellings; move or deactivate them first."
    zh = "该区划下仍有启用的下级区划或房屋，请先迁移或停用。"


class DivisionMoveCycle(Conflict):
    code = "division_move_cycle"
    en = "A division cannot be moved under itself or one of its descendants."
    zh = "不能把区划移到其自身或其下级之下。"


class DivisionInactive(Conflict):
    code = "division_inactive"
    en = "The community or grid is inactive."
    zh = "该社区或网格已停用。"


class NotACommunity(Unprocessable):
    code = "not_a_community"
    en = "community_id must name a community."
    zh = "community_id 必须是社区。"


class NotAGrid(Unprocessable):
    code = "not_a_grid"
    en = "grid_id must name a grid."
    zh = "grid_id 必须是网格。"


class GridNotInCommunity(Unprocessable):
    code = "grid_not_in_community"
    en = "The grid does not belong to the community."
    zh = "该网格不属于该社区。"


class DwellingAddressTaken(Conflict):
    code = "dwelling_address_taken"
    en = "The community already has a dwelling at this address."
    zh = "该社区已有相同地址的房屋。"


class ConcurrentUpdate(Conflict):
    code = "concurrent_update"
    en = "Someone else changed these records at the same time; try again."
    zh = "其他人正在同时修改这些记录，请重试。"
