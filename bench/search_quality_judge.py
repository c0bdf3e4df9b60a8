"""Write the judgements of bench/search_quality.py: which sample works a person expects for
each query, with a grade (2: what was asked for, 1: related).

    python bench/search_quality_judge.py  # rewrites search_quality_judgements.csv

Judged by reading the records, never by running our search: each query names the concepts a
buyer means, each concept is written out by hand as the words that say it in any form and
spelling (plural, participle, British and American, with and without accents, synonyms a
cataloguer uses: "porcelain" is a ceramic, "lady" a woman), and a work is relevant when its
title, medium, date or descriptive tags (subjects, classification, culture, period, ...) say
every concept of the query (not a long description, whose passing mentions are not what a
buyer asked for: a still life "with a Chinese porcelain bowl" is no Chinese ceramic); a
creator query is judged on the creator. Grade 2 when the title (or, for a creator query, the
creator) says it, 1 when only the other fields do.
The file is reviewed by hand after writing (diff it).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass

from search_quality import JUDGEMENTS, SHARED, corpus

from marketplace.catalog.sources.base import StockFields


def fold(text: str) -> str:
    """Lower case without accents: "Cézanne" and "cezanne" are one name to a reader."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Concepts, as the words that say them.
CAT = words(r"\bcats?\b|\bkittens?\b|\bkitty\b")
ROSE = words(r"\broses?\b|\brosebush")
LANDSCAPE = words(r"\blandscapes?\b")
ETCHING = words(r"\betch(ed|es|ing|ings)?\b")
PORTRAIT = words(r"portrait")  # portraits, self-portrait, portraiture
HARBOUR = words(r"\bharbou?rs?\b")
WOMAN = words(r"\bwom[ae]n\b|\blad(y|ies)\b|\bgirls?\b|\bfemale\b|\bmadame\b|\bmme\b|\bmrs\b")
RIVER = words(r"\brivers?\b")
STILL_LIFE = words(  # a vase of flowers is a still life to anyone who sees it
    r"\bstill[- ]?li(fe|ves|fes)\b|\bvases? of flowers\b|\bflowers in a vase\b|\bbouquet"
)
FLOWER = words(r"\bflowers?\b|\bfloral\b|\bbouquet|\blil(y|ies)\b|\btulips?\b|\broses?\b")
CHINESE = words(r"\bchinese\b|\bchina\b(?! painter)|\bqing\b|\bming\b|\bt'?ang dynasty")
CERAMIC = words(
    r"\bceramics?\b|\bporcelain\b|\bearthenware\b|\bstoneware\b|\bpottery\b|\bredware\b"
    r"|\bceladon\b|\bterra ?cotta\b"
)
HORSE = words(r"\bhorses?\b|\bponies\b|\bpony\b|\bequestrian\b")
DOG = words(r"\bdogs?\b|\bhounds?\b|\bpupp(y|ies)\b|\bspaniels?\b|\bterriers?\b")
BIRD = words(r"\bbirds?\b|\bsparrows?\b|\bquails?\b|\bpigeons?\b|\bdoves?\b|\bswans?\b")
SHIP = words(r"\bships?\b|\bboats?\b|\bvessels?\b|\bsailing\b|\byachts?\b|\bsteamers?\b")
MOUNTAIN = words(r"\bmountains?\b|\bmount\b|\bmt\.?\s|\balps\b|\balpine\b|\bpeaks?\b")
BRIDGE = words(r"\bbridges?\b|\bviaducts?\b")
CHURCH = words(r"\bchurch(es)?\b|\bcathedrals?\b|\babbey\b|\bchapel\b|\bminster\b")
CASTLE = words(r"\bcastles?\b")
RUIN = words(r"\bruins?\b|\bruined\b")
SEA = words(r"\bseas?\b|\bseascapes?\b|\bocean\b|\bwaves?\b|\bcoast(al)?\b|\bmarine\b")
STORM = words(r"\bstorms?\b|\bstormy\b|\btempest\b")
TREE = words(r"\btrees?\b|\bwooded\b|\bwoods?\b|\bforests?\b|\boaks?\b|\bpoplars?\b|\bbeech\b")
VENICE = words(r"\bvenice\b|\bvenetian\b|\bvenezia\b")
VIRGIN_CHILD = words(r"\bvirgin and child\b|\bmadonna and child\b|\bmother of god\b")
SELF_PORTRAIT = words(r"\bself[- ]portraits?\b")
HEAD = words(r"\bheads?\b")
WATERCOLOUR = words(r"\bwatercolou?rs?\b")
OIL_ON_CANVAS = words(r"\boil (paint )?on canvas\b")
LITHOGRAPH = words(r"\blithograph")
WOODCUT = words(r"\bwoodcuts?\b|\bwoodblock\b|\bwood engraving")
ENGRAVING = words(r"\bengrav(ed|ing|ings)\b")
BRONZE = words(r"\bbronzes?\b")
SCULPTURE = words(r"\bsculptures?\b|\bstatues?\b|\bstatuettes?\b|\bbusts?\b|\breliefs?\b")
PORCELAIN = words(r"\bporcelain\b")
PHOTOGRAPH = words(r"\bphotograph(s|ic)?\b|\bgelatin silver\b|\balbumen print\b|\bdaguerreotype")
PASTEL = words(r"\bpastels?\b")
MEZZOTINT = words(r"\bmezzotints?\b")
JAPANESE = words(r"\bjapan(ese)?\b|\bedo period\b")
PRINT = words(r"\bprints?\b|\bwoodblock\b|\bwoodcuts?\b|\betching\b|\blithograph|\bengraving\b")
EGYPTIAN = words(r"\begypt(ian)?\b")
ITALIAN = words(r"\bital(y|ian)\b|\bflorence\b|\bflorentine\b|\bvenice\b|\bvenetian\b")
DRAWING = words(r"\bdrawings?\b|\bsketch(es)?\b|\bgraphite\b|\bchalk\b|\bpen and\b")
AMERICAN = words(r"\bameric(a|an)\b|\bunited states\b")
PAINTING = words(r"\bpaintings?\b|\boil on\b")
FRENCH = words(r"\bfrance\b|\bfrench\b|\bparis\b")
CENTURY_19 = words(r"\b19th[- ]century\b|\bnineteenth[- ]century\b")
MEDIEVAL = words(r"\bmedieval\b|\bmiddle ages\b|\bgothic\b")
QING = words(r"\bqing\b")
EDO = words(r"\bedo period\b")
RENAISSANCE = words(r"\brenaissance\b")
INTERIOR = words(r"\binteriors?\b")
NUDE = words(r"\bnudes?\b")
STUDY = words(r"\bstud(y|ies)\b")


def creator(pattern: str) -> re.Pattern[str]:
    return words(pattern)


@dataclass(frozen=True)
class Query:
    text: str
    concepts: tuple[re.Pattern[str], ...] = ()
    creator: re.Pattern[str] | None = None  # judged on the creator field


QUERIES = (
    # The examples.
    Query("cats", (CAT,)),
    Query("rose", (ROSE,)),
    Query("landscapes", (LANDSCAPE,)),
    Query("etched", (ETCHING,)),
    Query("portraits", (PORTRAIT,)),
    Query("portrait", (PORTRAIT,)),
    Query("harbor", (HARBOUR,)),
    Query("harbour", (HARBOUR,)),
    Query("landsc", (LANDSCAPE,)),
    Query("portrait woman", (PORTRAIT, WOMAN)),
    Query("landscape with river", (LANDSCAPE, RIVER)),
    Query("still life flowers", (STILL_LIFE, FLOWER)),
    Query("Chinese ceramics", (CHINESE, CERAMIC)),
    # Creators.
    Query("Turner", creator=creator(r"\bturner\b")),
    Query("William Blake", creator=creator(r"\bwilliam blake\b")),
    Query("van gogh", creator=creator(r"\bvan gogh\b")),
    Query("Rembrandt", creator=creator(r"\brembrandt\b")),
    Query("Hiroshige", creator=creator(r"\bhiroshige\b")),
    Query("Claude Monet", creator=creator(r"\bclaude monet\b")),
    Query("Beatrix Potter", creator=creator(r"\bbeatrix potter\b")),
    # Accented names, typed without the accents, and the other way round.
    Query("cezanne", creator=creator(r"\bcezanne\b")),
    Query("durer", creator=creator(r"\bdurer\b")),
    Query("saint remy", (words(r"\bsaint[- ]remy\b"),)),
    Query("tannhauser", (words(r"\btannhauser\b"),)),
    Query("Honoré Daumier", creator=creator(r"\bhonore daumier\b")),
    Query("Dürer", creator=creator(r"\bdurer\b")),
    Query("eugene atget", creator=creator(r"\beugene atget\b")),
    # Media and techniques.
    Query("watercolour", (WATERCOLOUR,)),
    Query("watercolor", (WATERCOLOUR,)),
    Query("oil on canvas", (OIL_ON_CANVAS,)),
    Query("lithographs", (LITHOGRAPH,)),
    Query("woodcut", (WOODCUT,)),
    Query("engravings", (ENGRAVING,)),
    Query("bronze sculpture", (BRONZE, SCULPTURE)),
    Query("porcelain", (PORCELAIN,)),
    Query("photographs", (PHOTOGRAPH,)),
    Query("pastel", (PASTEL,)),
    Query("mezzotint", (MEZZOTINT,)),
    # Cultures and places.
    Query("Japanese prints", (JAPANESE, PRINT)),
    Query("Egyptian", (EGYPTIAN,)),
    Query("Italian drawings", (ITALIAN, DRAWING)),
    Query("American painting", (AMERICAN, PAINTING)),
    Query("French painting", (FRENCH, PAINTING)),
    Query("Venice", (VENICE,)),
    # Periods.
    Query("19th century", (CENTURY_19,)),
    Query("medieval", (MEDIEVAL,)),
    Query("Qing dynasty", (QING,)),
    Query("Edo period", (EDO,)),
    Query("renaissance", (RENAISSANCE,)),
    # Subjects, one word and several.
    Query("horses", (HORSE,)),
    Query("dog", (DOG,)),
    Query("birds", (BIRD,)),
    Query("ships", (SHIP,)),
    Query("mountains", (MOUNTAIN,)),
    Query("bridges", (BRIDGE,)),
    Query("church interior", (CHURCH, INTERIOR)),
    Query("castle ruins", (CASTLE, RUIN)),
    Query("storm at sea", (STORM, SEA)),
    Query("trees", (TREE,)),
    Query("virgin and child", (VIRGIN_CHILD,)),
    Query("self-portrait", (SELF_PORTRAIT,)),
    Query("head of a woman", (HEAD, WOMAN)),
    Query("female nude", (NUDE, WOMAN)),
    Query("study of a horse", (STUDY, HORSE)),
)


def title_text(record: StockFields) -> str:
    return fold(record.title)


def other_text(record: StockFields) -> str:
    return fold(" | ".join((record.medium, record.date_text, " | ".join(record.tags))))


def grade(query: Query, record: StockFields) -> int:
    if query.creator is not None:
        return 2 if query.creator.search(fold(record.creator)) else 0
    title, other = title_text(record), other_text(record)
    if all(concept.search(title) for concept in query.concepts):
        return 2
    if all(concept.search(title) or concept.search(other) for concept in query.concepts):
        return 1
    return 0


def main() -> None:
    records = [(source, record) for source, mapped in corpus(SHARED / "data") for record in mapped]
    with JUDGEMENTS.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["query", "source", "source_id", "grade"])
        for query in QUERIES:
            judged = [(source, r.source_id, grade(query, r)) for source, r in records]
            relevant = [row for row in judged if row[2] > 0]
            if not relevant:
                raise SystemExit(f"no work in the samples for {query.text!r}: drop the query")
            writer.writerows((query.text, *row) for row in relevant)
            print(f"{query.text!r}: {len(relevant)} relevant")


if __name__ == "__main__":
    main()
