"""What the outflow-city tests share: the fields an outflow city may receive, those it never may, and a
resident with a given 户籍地."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, World
from tests.factories import dwelling_id, id_number, register_resident

OUTFLOW_FIELDS = {"id", "name", "sex", "birth_date", "id_number", "hukou_code", "residence_district_code",
                  "residence_community", "arrival_date", "status", "left_on", "verification_status",
                  "fp_document_status", "verification_month"}
NEVER = {"phone", "dwelling_address", "dwelling_id", "contraception", "pregnancy", "children", "visits",
         "services", "employer", "occupation", "area_path"}


def resident(api: Api, world: World, user: str, community: str, seq: str, hukou: str) -> dict[str, Any]:
    return register_resident(api, user, dwelling_id(world, community, 1), id_number=id_number(seq=seq, area=hukou),
                             hukou_code=hukou, name="户籍" + seq)
