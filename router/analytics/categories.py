"""Which area of law a question is about: keyword stems per category, scored; `general` when none match.

Words are reduced to their Snowball (Russian) stems before matching, so "договором", "налогов" and
"уволили" find the keywords "договор", "налог" and "уволить". Each keyword carries a weight: a word
that names its area outright ("алименты", "НДФЛ") outweighs one that only leans towards it
("квартира", "суд"), so "трудовой договор" is labour law and "вычет за квартиру" tax law. The
stemmer is pure Python (~15 µs a word), which is why the router classifies off the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import snowballstemmer

from router.analytics.names import CATEGORIES, GENERAL

SHORT = 3  # words this short are kept whole: the stemmer would cut "ООО" to "оо", "сын" to "сы"
MIN_PREFIX = 5  # a keyword stem this long also matches longer stems ("увольнен" in "увольнения")

# weight → words; a word's stem is what is matched. 3: names the area; 2: strongly suggests it; 1: leans;
# 4: decides against another area's naming word.
KEYWORDS: dict[str, dict[int, str]] = {
    "contracts": {
        3: "сделка оферта акцепт неустойка задаток расписка займ поставка подряд подрядчик потребитель "
           "претензия гарантия ГК",
        2: "договор долг должник исполнитель продавец покупатель товар магазин услуга возврат кредит "
           "страховка путевка соглашение",
        1: "купить купля продажа оплата деньги проценты вернуть акт",
    },
    "criminal_law": {
        3: "уголовный преступление кража украсть мошенничество мошенник грабеж грабитель разбой убийство "
           "украли побои следователь следствие допрос приговор обвиняемый подозреваемый судимость наркотики взятка "
           "УК УПК вор самооборона оборона вымогательство клевета осуждение осужденный невиновность повинная "
           "оправдательный колония изнасилование растрата присвоение экстремизм коррупция похищение угон поджог",
        2: "полиция задержать задержание арест посадить наказание наказать освобождение потерпевший",
    },
    "business_law": {
        3: "ООО ИП предприниматель учредитель устав уставный общество банкротство ликвидация ликвидировать "
           "акционерный лицензия дивиденды директор бизнес контрагент фирма корпоративный товарный "
           "субсидиарный юрлицо",
        2: "компания организация доля партнер кафе участник",
        1: "открыть регистрация юридический",
    },
    "tax_law": {
        4: "налог",  # a company's or a flat's taxes are tax law
        3: "налоговый налогообложение НДФЛ НДС УСН упрощенка вычет декларация недоимка переплата "
           "самозанятый патентный НК взносы",
        2: "инспекция облагаться льгота",
    },
    "labour_law": {
        3: "трудовой работодатель работник уволить увольнение зарплата заработный отпуск больничный "
           "сокращение сократить совместительство прогул оклад сотрудник ТК смена декрет должность испытательный "
           "дисциплинарный сверхурочный командировка премия вахта рабочий",
        2: "работа работать начальник компенсация выплата расчет травма",
    },
    "family_law": {
        3: "развод алименты брак брачный супруг супруга муж жена ребенок дети сын дочь отцовство опека "
           "усыновить родительский наследство наследовать наследник завещание ЗАГС СК родитель",
        2: "семья бабушка мама отец",
    },
    "housing": {
        3: "квартира жилье жилой ЖКХ ЖКУ коммунальный коммуналка прописка выписать перепланировка "
           "приватизировать застройщик ипотека сосед многоквартирный капремонт капитальный ЖК выселить "
           "наниматель найм",
        2: "дом собственник арендатор управляющий затопить электричество",
    },
    "administrative": {
        3: "штраф ГИБДД КоАП административный правонарушение госуслуги паспорт загранпаспорт удостоверение "
           "чиновник прокуратура пристав ОСАГО парковка скорость хулиганство разрешение постановление справка",
        2: "обжаловать жалоба регистрация гражданин иностранный оштрафовать права",
    },
    "general": {  # questions about the law and the courts as such: they win only when nothing more specific does
        2: "юрист юридический консультация закон суд иск исковый апелляция госпошлина доверенность нотариус "
           "давность",
    },
}

_WORD = re.compile(r"[а-яёa-z0-9]+")
_stemmer = snowballstemmer.stemmer("russian")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The stem of one lower-case word (cached: questions repeat their words)."""
    word = word.replace("ё", "е")
    return word if len(word) <= SHORT else str(_stemmer.stemWord(word))


def stems(text: str) -> list[str]:
    return [stem(word) for word in _WORD.findall(text.lower())]


def _table() -> dict[str, list[tuple[str, int]]]:
    """Keyword stem → (category, weight): a word is looked up whole and by its prefixes, a few dict
    lookups instead of a scan of every keyword."""
    table: dict[str, list[tuple[str, int]]] = {}
    for category, weighted in KEYWORDS.items():
        for weight, words in weighted.items():
            for word in words.split():
                table.setdefault(stem(word.lower()), []).append((category, weight))
    return table


_TABLE = _table()


@lru_cache(maxsize=65536)
def _hits(word: str) -> tuple[tuple[str, str, int], ...]:
    """The keywords a word's stem finds, whole or by a prefix long enough: (keyword, category, weight)."""
    keys = [word, *(word[:length] for length in range(MIN_PREFIX, len(word)))]
    return tuple((key, category, weight) for key in keys for category, weight in _TABLE.get(key, ()))


def scores(words: Iterable[str]) -> dict[str, int]:
    """Each category's score over a question's stems; each keyword counts once."""
    found: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    for word in words:
        for keyword, category, weight in _hits(word):
            if (keyword, category) not in seen:
                seen.add((keyword, category))
                found[category] = found.get(category, 0) + weight
    return found


def classify(text: str) -> str:
    """The best-scoring category of a question, or `general` when no keyword matches.
    Ties go to the category listed first in CATEGORIES."""
    found = scores(stems(text))
    if not found:
        return GENERAL
    return max(CATEGORIES, key=lambda category: found.get(category, 0))
