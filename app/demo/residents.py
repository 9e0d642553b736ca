"""Demo people: residents in households, landlords, tenancies, 婚育证明 checks and health records.

Realistic enough to demonstrate and to benchmark with:
- resident IDs are valid 18-character numbers (GB 11643 check character) whose address codes come from the
  cooperation cities 周口 4116xx, 驻马店 4117xx, 信阳 4115xx (about two thirds), the rest of Henan and a few
  other provinces (安徽, 河北, 山东, 湖北, 四川 …); the 户籍地 code is the ID's first six digits;
- the sequence part of every demo ID (digits 15–17) is 600–999, so hand-written IDs with a lower sequence
  (tests, examples: 411602199003150025) never collide with demo data;
- people come in households (single migrants, couples, families with children) sharing a dwelling,
  a 户籍地 and an arrival date within the last five years; about half are women and about a third are
  women aged 15–49; a few households have moved within the community or left;
- women aged 15–49 get a 婚育证明 check and (mostly) a health record; the key-person flag is computed
  with `app.people.service.is_key_person` itself, so it always agrees with the live rule;
- landlords own the rental dwellings of a community (one to several units each).

Rows go in with bulk statements (executemany on SQLite, COPY on PostgreSQL): no ORM objects, no per-row
audit events; the seed records one audit event with the counts. Deterministic for a given seed and date.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import text
from sqlmodel import Session

from app.core.bulk import BulkWriter, table_of
from app.people.models import (
    Contraception,
    FpDocStatus,
    FpDocument,
    HealthRecord,
    Landlord,
    MaritalStatus,
    PregnancyStatus,
    Resident,
    ResidentStatus,
    Tenancy,
    TenancySource,
)
from app.people.register import service
from app.people.rules import CHECK_CHARS, WEIGHTS
from app.places.models import DwellingKind

SEQ_MIN = 600  # demo IDs use sequence numbers 600–999 (see the module docstring)

# (weight, province, city, {county code: county name}) — codes as in GB/T 2260 (some older codes kept on
# purpose: old codes stay legitimate in ID numbers).
REGIONS: list[tuple[float, str, str, dict[str, str]]] = [
    (30, "河南省", "周口市", {"411602": "川汇区", "411621": "扶沟县", "411622": "西华县", "411623": "商水县",
                              "411624": "沈丘县", "411625": "郸城县", "411626": "淮阳县", "411627": "太康县",
                              "411628": "鹿邑县", "411681": "项城市"}),
    (20, "河南省", "驻马店市", {"411702": "驿城区", "411721": "西平县", "411722": "上蔡县", "411723": "平舆县",
                                "411724": "正阳县", "411725": "确山县", "411726": "泌阳县", "411727": "汝南县",
                                "411728": "遂平县", "411729": "新蔡县"}),
    (18, "河南省", "信阳市", {"411502": "浉河区", "411503": "平桥区", "411521": "罗山县", "411522": "光山县",
                              "411523": "新县", "411524": "商城县", "411525": "固始县", "411526": "潢川县",
                              "411527": "淮滨县", "411528": "息县"}),
    (6, "河南省", "商丘市", {"411421": "民权县", "411422": "睢县", "411423": "宁陵县", "411481": "永城市"}),
    (5, "河南省", "南阳市", {"411321": "南召县", "411323": "西峡县", "411325": "内乡县", "411330": "桐柏县"}),
    (3, "河南省", "开封市", {"410221": "杞县", "410222": "通许县", "410223": "尉氏县"}),
    (3, "河南省", "许昌市", {"411024": "鄢陵县", "411025": "襄城县"}),
    (3, "河南省", "平顶山市", {"410421": "宝丰县", "410422": "叶县"}),
    (4, "安徽省", "阜阳市", {"341221": "临泉县", "341222": "太和县", "341226": "颍上县"}),
    (2, "河北省", "邯郸市", {"130426": "涉县", "130481": "武安市"}),
    (2, "山东省", "菏泽市", {"371721": "曹县", "371722": "单县"}),
    (2, "湖北省", "荆州市", {"421023": "监利县", "421087": "松滋市"}),
    (1, "四川省", "广安市", {"511621": "岳池县"}),
    (1, "山西省", "晋城市", {"140522": "阳城县"}),
]
LOCAL = {"410102": "中原区", "410103": "二七区", "410104": "管城回族区", "410105": "金水区",
         "410108": "惠济区", "410122": "中牟县", "410181": "巩义市", "410182": "荥阳市"}
LOCAL_CODES = sorted(LOCAL)
TOWNS = ["城关镇", "城郊乡", "王集镇", "李寨乡", "张庄镇", "新集乡", "高庙乡", "马头镇", "孙店镇", "刘集乡"]
VILLAGES = ["前营村", "后楼村", "东街村", "西湖村", "大王庄村", "小李庄村", "张湾村", "刘庄村", "陈营村", "新河村"]
SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
            "阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")
MALE_CHARS = "伟强军磊洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林建国文志海东亮成峰新振永春"
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲桂英慧巧美婷雪琳晶燕红梅兰颖倩佳欣悦月萍丹璐蕾玉洁凤娇莉琴云珍"
PHONE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                  "156", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185",
                  "186", "187", "188", "189", "191", "193", "195", "198", "199"]
ETHNICITIES = [("汉族", 975), ("回族", 18), ("满族", 3), ("蒙古族", 2), ("土家族", 2)]
FIRMS = ["金诚", "华鑫", "中原", "豫兴", "鸿运", "恒达", "嘉禾", "瑞丰", "顺达", "宏图", "新郑", "绿源"]
JOBS = [  # (occupation, employer pattern; {f} = a firm name, None = no employer)
    ("建筑工人", "{f}建筑劳务有限公司"), ("装修工人", "{f}装饰工程有限公司"), ("快递员", "{f}快递服务有限公司"),
    ("外卖配送员", "{f}配送服务站"), ("餐饮服务员", "{f}餐饮店"), ("厨师", "{f}酒店"),
    ("保洁员", "{f}物业服务有限公司"),
    ("保安员", "{f}保安服务有限公司"), ("电子厂操作工", "{f}电子科技有限公司"), ("个体商户", None),
    ("销售员", "{f}商贸有限公司"), ("货车司机", "{f}物流有限公司"), ("家政服务员", "{f}家政服务有限公司"),
    ("护工", "{f}护理服务中心"), ("理发师", "{f}美发店"), ("仓库管理员", "{f}仓储有限公司"),
]
LEFT_REASONS = ["left_city", "returned_home", "moved_within_city"]
SOURCES = [TenancySource.worker.value] * 5 + [TenancySource.self_report.value] * 2 + [
    TenancySource.landlord.value] * 2 + [TenancySource.police.value]


class Weighted:
    """Fast weighted choice (cumulative weights + bisect) from a fixed population."""

    def __init__(self, items: Sequence[tuple[Any, float]]) -> None:
        self.values = [v for v, _ in items]
        self.cum = list(accumulate(w for _, w in items))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect(self.cum, rng.random() * self.total)]


HOUSEHOLD_SIZES = Weighted([(1, 40), (2, 33), (3, 19), (4, 7), (5, 1)])  # children left at home are common
ADULT_AGES = Weighted([((18, 24), 18), ((25, 34), 34), ((35, 44), 26), ((45, 54), 15), ((55, 66), 7)])
REGION_PICK = Weighted([((prov, city, sorted(counties.items())), w) for w, prov, city, counties in REGIONS])
ETHNICITY_PICK = Weighted(ETHNICITIES)
MARRIED_CONTRACEPTION = Weighted([(Contraception.iud.value, 55), (Contraception.implant.value, 6),
                                  (Contraception.sterilisation.value, 12), (Contraception.condom.value, 12),
                                  (Contraception.oral.value, 4), (Contraception.injection.value, 2),
                                  (Contraception.none.value, 9)])
SINGLE_CONTRACEPTION = Weighted([(Contraception.condom.value, 30), (Contraception.oral.value, 8),
                                 (Contraception.none.value, 55), (Contraception.other.value, 7)])
DOC_STATUS_MARRIED = Weighted([(FpDocStatus.valid.value, 85), (FpDocStatus.temporary.value, 4),
                               (FpDocStatus.expired.value, 5), (FpDocStatus.nonconforming.value, 1),
                               (FpDocStatus.missing.value, 5)])
DOC_STATUS_SINGLE = Weighted([(FpDocStatus.valid.value, 68), (FpDocStatus.temporary.value, 5),
                              (FpDocStatus.expired.value, 9), (FpDocStatus.missing.value, 18)])


# --- bulk writing -----------------------------------------------------------------------------------------

@contextmanager
def indexes_deferred(session: Session, tables: Sequence[str]) -> Iterator[None]:
    """Bulk-load recipe (PostgreSQL manual, "Populating a Database"): drop the tables' secondary indexes (and
    on PostgreSQL their foreign keys), load, then recreate them from the definitions the database itself
    reported, under the same names, in the same transaction. Building an index once is far cheaper than
    growing it row by row; re-adding a foreign key checks every row in one join. Only for empty tables.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        indexes = connection.execute(text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(:t) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname AND c.contype IN ('p', 'u', 'x'))"), {"t": list(tables)}).all()
        keys = connection.execute(text(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(:t)"), {"t": list(tables)}).all()
        for table, name, _ in keys:
            connection.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        yield
        for _, definition in indexes:
            connection.exec_driver_sql(definition)
        for table, name, definition in keys:
            connection.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    else:
        marks = ", ".join(f"'{t}'" for t in tables)
        indexes = connection.exec_driver_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
            f"AND tbl_name IN ({marks})").all()
        for name, _ in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
        yield
        for _, definition in indexes:
            connection.exec_driver_sql(definition)


RESIDENT_COLUMNS = ("id", "community_id", "dwelling_id", "area_path", "district_code", "name", "sex", "birth_date",
                    "id_number", "id_verified", "phone", "ethnicity", "hukou_code", "hukou_address",
                    "arrival_date", "marital_status", "employer", "occupation", "residence_permit_no", "status",
                    "left_on", "left_reason", "key_person", "created_at", "updated_at", "version")
TENANCY_COLUMNS = ("id", "resident_id", "dwelling_id", "area_path", "district_code", "move_in", "move_out",
                   "source", "created_at")
DOC_COLUMNS = ("id", "resident_id", "district_code", "number", "issuing_division", "issued_on", "expires_on",
               "status", "checked_at", "created_at", "updated_at", "version")
HEALTH_COLUMNS = ("resident_id", "district_code", "contraception", "contraception_since", "pregnancy",
                  "pregnancy_noted_on", "children", "updated_at", "version")
LANDLORD_COLUMNS = ("id", "name", "id_number", "phone", "district_code", "created_at", "updated_at", "version")
PEOPLE_TABLES = ("residents", "tenancies", "fp_documents", "health_records")


# --- generation ------------------------------------------------------------------------------------------

@dataclass
class Batch:
    residents: list[tuple[Any, ...]]
    tenancies: list[tuple[Any, ...]]
    documents: list[tuple[Any, ...]]
    health: list[tuple[Any, ...]]


@dataclass
class PeopleCounts:
    residents: int = 0
    women_15_49: int = 0
    key_persons: int = 0
    landlords: int = 0


# Enum values as plain strings (attribute access on StrEnum members is slow in a hot loop).
MARRIED, UNMARRIED = MaritalStatus.married.value, MaritalStatus.unmarried.value
DIVORCED, WIDOWED = MaritalStatus.divorced.value, MaritalStatus.widowed.value
REGISTERED, LEFT = ResidentStatus.registered.value, ResidentStatus.left.value
NO_CONTRACEPTION = Contraception.none.value
PREGNANT, NOT_PREGNANT, UNKNOWN = (PregnancyStatus.pregnant.value, PregnancyStatus.not_pregnant.value,
                                   PregnancyStatus.unknown.value)
DOC_MISSING, DOC_EXPIRED, DOC_TEMPORARY = (FpDocStatus.missing.value, FpDocStatus.expired.value,
                                           FpDocStatus.temporary.value)
RENTAL = DwellingKind.rental.value
SEQ_SUMS = [sum(int(d) * w for d, w in zip(f"{s:03d}", WEIGHTS[14:], strict=True)) for s in range(1000)]


class PeopleGenerator:
    """Generates rows as tuples in the column orders above. Hot code: plain floats from `random()` instead
    of randrange/choice, and the ID check character from cached partial sums (same result as
    `rules.check_char`; the tests check every generated ID with `rules.parse_id`)."""

    def __init__(self, rng: random.Random, today: date, now: datetime) -> None:
        self.rng = rng
        self.rnd = rng.random
        self.today = today
        self.now = now
        self.used_ids: set[int] = set()
        self.counts = PeopleCounts()
        self._permit_seq = 0
        self._address_sums: dict[str, int] = {}
        self._date_sums: dict[date, tuple[str, int, int]] = {}

    # -- small pieces --

    def pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.rnd() * len(items))]

    def between(self, low: int, high: int) -> int:
        """A whole number from low to high inclusive."""
        return low + int(self.rnd() * (high - low + 1))

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def id_number(self, address: str, born: date, sex: str) -> str:
        """A valid, unused 18-character ID (sequence 600–999, odd for men, even for women)."""
        address_sum = self._address_sums.get(address)
        if address_sum is None:
            address_sum = sum(int(d) * w for d, w in zip(address, WEIGHTS[:6], strict=True))
            self._address_sums[address] = address_sum
        dated = self._date_sums.get(born)
        if dated is None:
            text = f"{born.year:04d}{born.month:02d}{born.day:02d}"
            dated = (text, int(text), sum(int(d) * w for d, w in zip(text, WEIGHTS[6:14], strict=True)))
            self._date_sums[born] = dated
        date_text, date_number, date_sum = dated
        base = (int(address) * 100_000_000 + date_number) * 1000
        parity = 1 if sex == "M" else 0
        while True:
            seq = (SEQ_MIN // 2 + int(self.rnd() * (500 - SEQ_MIN // 2))) * 2 + parity
            if base + seq not in self.used_ids:
                self.used_ids.add(base + seq)
                check = CHECK_CHARS[(address_sum + date_sum + SEQ_SUMS[seq]) % 11]
                return f"{address}{date_text}{seq:03d}{check}"

    def name(self, sex: str) -> str:
        rnd = self.rnd
        chars = MALE_CHARS if sex == "M" else FEMALE_CHARS
        n = len(chars)
        given = chars[int(rnd() * n)] + (chars[int(rnd() * n)] if rnd() < 0.72 else "")
        return SURNAMES[int(rnd() * len(SURNAMES))] + given

    def phone(self) -> str:
        return f"{self.pick(PHONE_PREFIXES)}{int(self.rnd() * 100_000_000):08d}"

    def birth_date(self, age: int) -> date:
        """A birth date giving exactly `age` (completed years) today."""
        return _years_before(self.today, age) - timedelta(days=int(self.rnd() * 365))

    def random_day(self, start: date, end: date) -> date:
        span = (end - start).days
        return start + timedelta(days=int(self.rnd() * (span + 1))) if span > 0 else start

    # -- landlords --

    def landlords(self, dwellings: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Landlords for one community's rental dwellings (sets each dwelling's landlord_id)."""
        rows: list[tuple[Any, ...]] = []
        rentals = [d for d in dwellings if d["kind"] == RENTAL]
        index = 0
        while index < len(rentals):
            owned = rentals[index:index + self.pick((1, 1, 2, 2, 3, 4, 6))]
            index += len(owned)
            sex = "M" if self.rnd() < 0.6 else "F"
            born = self.birth_date(self.between(35, 72))
            landlord_id = self.new_id()
            rows.append((landlord_id, self.name(sex), self.id_number(self.pick(LOCAL_CODES), born, sex),
                         self.phone(), owned[0]["district_code"], self.now, self.now, 1))
            for dwelling in owned:
                dwelling["landlord_id"] = landlord_id
        self.counts.landlords += len(rows)
        return rows

    # -- residents --

    def community(self, community: dict[str, Any], dwellings: list[dict[str, Any]], count: int) -> Batch:
        """`count` residents (in households) living in `dwellings` of one community."""
        batch = Batch([], [], [], [])
        while count > 0:
            size = min(count, HOUSEHOLD_SIZES.pick(self.rng))
            self.household(community, dwellings, size, batch)
            count -= size
        return batch

    def household(self, community: dict[str, Any], dwellings: list[dict[str, Any]], size: int,
                  batch: Batch) -> None:
        rnd, today = self.rnd, self.today
        province, city, counties = REGION_PICK.pick(self.rng)
        hukou, county = self.pick(counties)
        address = (f"{province}{city}{county}{self.pick(TOWNS)}{self.pick(VILLAGES)}"
                   f"{self.between(1, 12)}组{self.between(1, 99)}号")
        # Arrivals lean towards recent months (people keep arriving; older records were often closed).
        arrived = today - timedelta(days=int(rnd() ** 1.6 * 5 * 365))
        low, high = ADULT_AGES.pick(self.rng)
        head_age = self.between(low, high)
        head_sex = "M" if rnd() < (0.56 if size == 1 else 0.5) else "F"
        members: list[tuple[str, int, str]] = [(head_sex, head_age, "head")]
        mother_age = head_age
        if size >= 2:
            spouse_age = max(18, head_age + self.between(-4, 4))
            members.append(("F" if head_sex == "M" else "M", spouse_age, "spouse"))
            mother_age = spouse_age if head_sex == "M" else head_age
        for _ in range(size - len(members)):
            members.append(("M" if rnd() < 0.52 else "F", self.between(0, max(0, min(mother_age - 20, 30))),
                            "child"))
        dwelling = self.pick(dwellings)
        moved = None
        if rnd() < 0.1 and len(dwellings) > 1 and (today - arrived).days > 60:
            before = dwelling
            dwelling = self.pick(dwellings)
            if dwelling is not before:
                moved = (before, self.random_day(arrived + timedelta(days=30), today))
        left = None
        settled = (moved[1] if moved else arrived) + timedelta(days=30)
        if rnd() < 0.03 and settled < today:
            left = (self.random_day(settled, today), self.pick(LEFT_REASONS))
        for sex, age, role in members:
            self.person(community, dwelling, hukou, address, arrived, sex, age, role, size >= 2, moved, left,
                        batch)

    def person(self, community: dict[str, Any], dwelling: dict[str, Any], hukou: str, address: str,
               arrived: date, sex: str, age: int, role: str, married_household: bool,
               moved: tuple[dict[str, Any], date] | None, left: tuple[date, str] | None, batch: Batch) -> None:
        rnd, today, now = self.rnd, self.today, self.now
        born = self.birth_date(age)
        arrival = max(arrived, born)
        if moved is not None and moved[1] <= arrival:
            moved = None
        if role == "child":
            marital = UNMARRIED if age < 22 or rnd() < 0.7 else MARRIED
        elif married_household:
            marital = MARRIED
        else:
            marital = self.single_marital(age)
        adult = age >= 18
        job = self.pick(JOBS) if adult and age < 62 and rnd() < 0.86 else None
        employer = job[1].format(f=self.pick(FIRMS)) if job and job[1] else None
        permit = None
        district = community["district_code"]
        if adult and (today - arrival).days > 180 and rnd() < 0.6:
            self._permit_seq += 1
            permit = f"{district}{arrival.year}{self._permit_seq:08d}"
        resident_id = self.new_id()
        status, left_on, left_reason = REGISTERED, None, None
        if left is not None:
            status, left_on, left_reason = LEFT, max(left[0], arrival), left[1]
        key = False
        if sex == "F" and 15 <= age <= 49:
            docs = self.documents(resident_id, district, hukou, arrival, marital, batch)
            health = self.health(resident_id, district, age, born, marital, batch) if rnd() < 0.93 else None
            if status == REGISTERED:
                self.counts.women_15_49 += 1
                # The live rule decides (only registered women of 15–49 can be key persons).
                key = service.is_key_person(cast(Any, SimpleNamespace(status=status, sex=sex, birth_date=born)),
                                            cast(Any, health), cast(Any, docs), today)
                self.counts.key_persons += key
        self.counts.residents += 1
        phone = self.phone() if age >= 16 and rnd() < 0.96 else None
        batch.residents.append((
            resident_id, community["id"], dwelling["id"], dwelling["area_path"], district, self.name(sex), sex,
            born, self.id_number(hukou, born, sex), True, phone, ETHNICITY_PICK.pick(self.rng), hukou, address,
            arrival, marital, employer, job[0] if job else None, permit, status, left_on, left_reason, key, now,
            now, 1,
        ))
        source = SOURCES[int(rnd() * len(SOURCES))]
        if moved is not None:
            before, on = moved
            batch.tenancies.append((self.new_id(), resident_id, before["id"], before["area_path"], district,
                                    arrival, on, source, now))
            arrival = on
        batch.tenancies.append((self.new_id(), resident_id, dwelling["id"], dwelling["area_path"], district,
                                arrival, max(left_on, arrival) if left_on else None, source, now))

    def single_marital(self, age: int) -> str:
        """Marital status of someone who came alone (many married migrants leave their family at home)."""
        if age < 22:
            return UNMARRIED
        r = self.rnd()
        married_share = 0.35 if age < 28 else (0.7 if age < 45 else 0.8)
        if r < married_share:
            return MARRIED
        if age >= 30 and r < married_share + 0.08:
            return DIVORCED if age < 55 or self.rnd() < 0.5 else WIDOWED
        return UNMARRIED

    def documents(self, resident_id: str, district: str, hukou: str, arrival: date, marital: str,
                  batch: Batch) -> list[SimpleNamespace]:
        rnd, today = self.rnd, self.today
        if rnd() > 0.94:
            return []  # not checked yet
        status = (DOC_STATUS_MARRIED if marital == MARRIED else DOC_STATUS_SINGLE).pick(self.rng)
        number = issuing = issued = expires = None
        if status != DOC_MISSING:
            issuing = f"{hukou}{self.between(100, 120)}"
            if status == DOC_EXPIRED:
                issued = today - timedelta(days=self.between(3 * 365 + 30, 6 * 365))
                expires = _years_after(issued, 3)
            elif status == DOC_TEMPORARY:
                issued = today - timedelta(days=self.between(0, 80))
                expires = issued + timedelta(days=90)
            else:
                issued = today - timedelta(days=self.between(0, 3 * 365 - 30))
                expires = _years_after(issued, 3)
            number = f"{issuing}{issued.year}{int(rnd() * 1_000_000):06d}"
        checked_on = self.random_day(arrival, min(today, arrival + timedelta(days=30)))
        checked = datetime(checked_on.year, checked_on.month, checked_on.day, self.between(1, 9),
                           tzinfo=self.now.tzinfo)
        batch.documents.append((self.new_id(), resident_id, district, number, issuing, issued, expires, status,
                                checked, self.now, self.now, 1))
        return [SimpleNamespace(status=status, expires_on=expires)]

    def health(self, resident_id: str, district: str, age: int, born: date, marital: str,
               batch: Batch) -> SimpleNamespace:
        rnd, today = self.rnd, self.today
        married = marital == MARRIED
        births: list[tuple[date, str]] = []
        if married and age >= 20:
            first = _years_after(born, 20)
            for _ in range(self.pick((0, 1, 1, 2, 2, 2, 3))):
                births.append((self.random_day(first, today), "M" if rnd() < 0.52 else "F"))
            if age <= 40 and rnd() < 0.04:  # a baby born this year
                births.append((self.random_day(date(today.year, 1, 1), today), "M" if rnd() < 0.52 else "F"))
        births.sort()
        pregnant = married and age <= 42 and rnd() < 0.06
        contraception = (NO_CONTRACEPTION if pregnant else
                         (MARRIED_CONTRACEPTION if married else SINGLE_CONTRACEPTION).pick(self.rng))
        since = self.random_day(_years_after(born, 18), today) if contraception != NO_CONTRACEPTION else None
        pregnancy = PREGNANT if pregnant else (NOT_PREGNANT if rnd() < 0.9 else UNKNOWN)
        noted = today - timedelta(days=self.between(0, 200)) if pregnant else None
        # The JSON list app/people/models.py describes: [{"birth_date": "YYYY-MM-DD", "sex": "M"|"F"}].
        children = "[" + ",".join(f'{{"birth_date":"{b.isoformat()}","sex":"{s}"}}' for b, s in births) + "]"
        batch.health.append((resident_id, district, contraception, since, pregnancy, noted, children, self.now, 1))
        return SimpleNamespace(pregnancy=pregnancy, children=children, contraception=contraception)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _years_after(day: date, years: int) -> date:
    return _years_before(day, -years)


# --- the public entry point --------------------------------------------------------------------------------

Progress = Callable[[int, int], None]


def write_landlords(writer: BulkWriter, rows: list[tuple[Any, ...]]) -> None:
    writer.write(table_of(Landlord), LANDLORD_COLUMNS, rows)


def write_people(writer: BulkWriter, generator: PeopleGenerator,
                 communities: list[tuple[dict[str, Any], list[dict[str, Any]]]], size: int,
                 progress: Progress | None = None, batch_size: int = 20_000) -> None:
    """Generate and insert `size` residents spread evenly over `communities` (with their dwellings)."""
    if size <= 0 or not communities:
        return
    per, extra = divmod(size, len(communities))
    pending = Batch([], [], [], [])
    done = 0

    def flush() -> None:
        nonlocal pending
        if not pending.residents:
            return
        writer.write(table_of(Resident), RESIDENT_COLUMNS, pending.residents)
        writer.write(table_of(Tenancy), TENANCY_COLUMNS, pending.tenancies)
        writer.write(table_of(FpDocument), DOC_COLUMNS, pending.documents)
        writer.write(table_of(HealthRecord), HEALTH_COLUMNS, pending.health)
        pending = Batch([], [], [], [])
        if progress is not None:
            progress(done, size)

    for index, (community, dwellings) in enumerate(communities):
        count = per + (1 if index < extra else 0)
        if count == 0 or not dwellings:
            continue
        batch = generator.community(community, dwellings, count)
        pending.residents += batch.residents
        pending.tenancies += batch.tenancies
        pending.documents += batch.documents
        pending.health += batch.health
        done += len(batch.residents)
        if len(pending.residents) >= batch_size:
            flush()
    flush()
