"""The clean stage on the seed drop, the real SaudiNewsNet sample and generated edge cases."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import polars as pl
import pytest
from conftest import SAUDI_SAMPLE, SEED, run_corpus

from pipeline.plumbing.params import load_params, section
from pipeline.stages import clean
from pipeline.text import arabic_text

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")

# Title, first and last body line of each seed after cleaning, and the lines that must go.
SEED_EXPECTED = {
    "000_207dd742df60968e.txt": (
        "حفتر يرفض دعوة حكومة الوفاق الوطني لوقف إطلاق النار في ليبيا",
        "رفضت قوات القائد العسكري المتمرد خليفة حفتر إعلان وقف إطلاق النار من قبل الحكومة الليبية المعترف بها دوليا ووصفته بأنه عمل “تسويقي”.",
        "كان هناك القليل من القتال منذ يونيو. في الماضي ، اتهم الجانبان بعضهما البعض بانتهاك الهدنة بسرعة واستخدامهما لإعادة التسلح.",
        [],
    ),
    "001_1890ec523778a36f.txt": (
        "خليفة حفتر يرفض وقف إطلاق النار ويؤكد عزمه على اقتحام طرابلس العاصمة",
        "أعلن الجيش الوطني الليبي بقيادة خليفة حفتر عن استمرار هجومه على قوات حكومة الوفاق الليبية في طرابلس، معلناً بذلك عن رفضه لوقف إطلاق النار الذي دعت إليه كل من روسيا وتركيا.",
        "ويشير بعض الخبراء والمحللين السياسيين إلى الاتفاق الروسي التركي، باعتباره إعادة انتاج السيناريو السوري، كما يرى آخرون بأن التدخل التركي لصالح حكومة الوفاق، من شأنها تعقيد الأزمة الليبية أكثر وزيادة الصراعات والأطراف المتصارعة، فضلاً عن استعادة داعش السيطرة على المشهد في الجنوب الليبي.",
        [],
    ),
    "002_8104a4a422dbe5db.txt": (
        "حفتر يؤكد عدم التزامه بوقف النار إن لم تلتزم به ميليشيات طرابلس",
        "ذكر مصدر في قصر الإليزيه، يومه الاثنين، بأن خليفة حفتر قائد الجيش الليبي قد أكد بأنه لا يوجد التزام بوقف إطلاق النار في حين لم تحترمه الجماعات المسلحة في حكومة طرابلس.",
        "وكان قد عزّز الطرفان المتصادمان قواتهما المتمركزة في محاور القتال بعناصر إضافية، إذ قام الجيش الليبي خلال الأيام الماضية بإرسال تعزيزات عسكرية جديدة إلى العاصمة طرابلس وأيضا فرض حالة من السريّة على مواقعه وتمركزاته، في حين قد عزّزت الوفاق الصفوف الأمامية لقواتها بمقاتلين جدد وأسلحة وذخيرة، ويظهر بأنه قد تجهز لجولة جديدة من القتال، قد تسقط معها الهدنة الهشّة بشكل نهائي.",
        ["سياسة", "تابعونا على", "مقالات ذات صلة", "زر الذهاب إلى الأعلى"],
    ),
    "003_dcfddc591d83b7a5.txt": (
        "طرابلس حاولت التواصل مع حفتر عبر وسطاء...وهذا رده",
        "أكدت مصادر ليبية مطلعة فشل محاولات وساطة لوقف عمليات طرابلس العسكرية، والعمل على خطوة سياسية من شأنها وضع إطار للخروج من الأزمة.",
        "وحسب ما نشرت البعثة تباحث الطرفان في الأوضاع الراهنة في ليبيا وكيفية العودة إلى حالة من السلم والحوار، بحسب \"إرم نيوز\"، إلا أنه لم يتم التوصل إلى أي حلول سياسية حتى الآن.",
        ["Sputnik", "مناقشة"],
    ),
    "004_e68b2cddabe61a07.txt": (
        "بالتزامن مع زيارة السراج لأردوغان.. حفتر يعتزم تكثيف الهجوم على طرابلس وسط دعوات أمريكية للتهدئة",
        "أعلن المتحدث باسم الجنرال الليبي المتقاعد خليفة حفتر أن قواته تعتزم تشديد الهجوم على العاصمة الليبية طرابلس، وذلك في وقت يزور فيه رئيس المجلس الرئاسي لحكومة الوفاق الوطني فايز السراج، الرئيس التركي رجب طيب أردوغان.",
        "ومن جانبها، نفت روسيا وجود مرتزقة روس في ليبيا، في حين أنَّ الجيش الوطني الليبي كذَّب هذه الأرقام.",
        [
            "آخر الأخبار",
            "مقالات ذات صلة",
            "اترك تعليقاً",
            "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ *",
            "زر الذهاب إلى الأعلى",
        ],
    ),
}


def _normalised_lines(text: str) -> list[str]:
    """Raw lines as the documented normalisation leaves them (NFKC, no tatweel, one space)."""
    lines = (unicodedata.normalize("NFKC", line).replace("\u0640", "") for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line.strip()]


def _write_drop(folder: Path, articles: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _ingest_and_clean(raw: Path, work: Path, params: Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    options = ["--params", str(params)] if params else []
    run_corpus(*options, "ingest", "--input", str(raw), "--output", str(work / "ingest"), "--metrics", str(work / "ingest.json"))
    run_corpus(*options, "clean", "--input", str(work / "ingest"), "--output", str(work / "clean"), "--metrics", str(work / "clean.json"))
    return pl.read_parquet(work / "clean" / "articles.parquet"), pl.read_parquet(work / "clean" / "quarantine.parquet")


@pytest.fixture(scope="module")
def cleaned_seed(tmp_path_factory) -> pl.DataFrame:
    work = tmp_path_factory.mktemp("seed")
    raw = work / "raw"
    raw.mkdir()
    (raw / "seed").symlink_to(SEED)
    articles, quarantine = _ingest_and_clean(raw, work)
    assert quarantine.height == 0
    return articles


def test_seed_titles_and_body_boundaries(cleaned_seed):
    assert sorted(cleaned_seed["source_file"]) == sorted(SEED_EXPECTED)
    for row in cleaned_seed.iter_rows(named=True):
        title, first, last, _ = SEED_EXPECTED[row["source_file"]]
        lines = row["text"].split("\n")
        assert (row["title"], lines[0], lines[-1]) == (title, first, last)


def test_seed_boilerplate_removed_and_no_sentence_lost(cleaned_seed):
    for row in cleaned_seed.iter_rows(named=True):
        boilerplate = _normalised_lines("\n".join(SEED_EXPECTED[row["source_file"]][3]))
        raw_lines = _normalised_lines((SEED / row["source_file"]).read_text(encoding="utf-8"))
        kept_lines = [row["title"], *row["text"].split("\n")]
        assert not set(boilerplate) & set(kept_lines)
        # Every raw line is either kept, in order, or one of the expected boilerplate lines.
        assert [line for line in raw_lines if line not in boilerplate] == kept_lines


def test_boilerplate_words_inside_sentences_stay(tmp_path):
    body = [
        "قال المتحدث إن مقالات ذات صلة نشرت أمس في عدد من الصحف المحلية والدولية.",
        "سياسة الحكومة الجديدة تثير الجدل بين النواب في البرلمان منذ أسابيع طويلة.",
        "مناقشة",  # not trailing: a body line follows
        "ودعا الوزير المواطنين إلى متابعة التطورات عبر القنوات الرسمية للحكومة، مؤكدا أن تابعونا على الهواء ليست دعوة رسمية.",
    ]
    text = "سياسة\n\nعنوان الخبر عن جلسة البرلمان\n" + "\n".join(body) + "\nتابعونا على\nمناقشة\n"
    articles, _ = _ingest_and_clean(_write_drop(tmp_path / "raw" / "d", {"a.txt": text}).parent, tmp_path)
    row = articles.row(0, named=True)
    assert row["title"] == "عنوان الخبر عن جلسة البرلمان"
    assert row["text"].split("\n") == body


def test_lines_repeated_across_an_outlets_articles_are_removed_but_not_shared_sentences(tmp_path):
    wire_sentence = "وأضاف البيان أن الاجتماع المقبل سيعقد في العاصمة الرياض بحضور ممثلين عن جميع الدول الأعضاء في المنظمة لمناقشة آخر التطورات."
    records = []
    for n in range(12):
        body = [
            f"الخبر رقم {n} يتناول موضوعا مختلفا تماما عن بقية الأخبار في هذه المجموعة، ويتضمن تفاصيل خاصة به وحده {n}.",
            "(1)",
            wire_sentence,
            "للتواصل مع الكاتب أرسل رسالة SMS",
        ]
        records.append({"title": f"عنوان {n}", "content": "\n".join(body), "source": "outlet"})
    drop = tmp_path / "raw" / "d"
    drop.mkdir(parents=True)
    (drop / "records.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    articles, _ = _ingest_and_clean(drop.parent, tmp_path)
    assert articles.height == 12
    for text in articles["text"]:
        lines = text.split("\n")
        assert "للتواصل مع الكاتب أرسل رسالة SMS" not in lines  # short, in >= 10 articles of one outlet
        assert wire_sentence in lines  # longer than repeated_lines.max_chars
        assert "(1)" in lines  # no letters: a list number, not boilerplate
    removed = pl.read_parquet(tmp_path / "clean" / "removed_lines.parquet")
    assert removed.filter(pl.col("removed_as") == "repeated")["n_articles"].to_list() == [12]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﻻ ﺗﻮﺟﺪ", "لا توجد"),  # presentation forms folded by NFKC
        ("كتــــاب", "كتاب"),  # tatweel
        ("مُحَمَّد", "مُحَمَّد"),  # diacritics kept
        ("\ufeffخبر\u200f عاجل\u200b\u00ad", "خبر عاجل"),  # BOM, RLM, ZWSP, soft hyphen
        ("خبر\u00a0\u00a0عاجل \t اليوم", "خبر عاجل اليوم"),  # NBSP, tabs
        ("<p>خبر &amp; تحليل</p><script>var x=1;</script><div>سطر&#1575;</div>", "خبر & تحليل\nسطرا"),
        ("قال تعالى: &S239;{قل يأيها الناس}", "قال تعالى: {قل يأيها الناس}"),  # unknown entity code
        ("سطر أول\r\n\r\n\r\n  سطر ثان  ", "سطر أول\nسطر ثان"),
        ("نص\x07 مع\x1b تحكم", "نص مع تحكم"),
    ],
)
def test_clean_text_cases(raw, expected):
    assert pl.select(arabic_text.clean_text(pl.lit(raw))).item() == expected


def _article_frame(texts: list[str]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "id": [f"id{n}" for n in range(len(texts))],
            "drop": "d",
            "source_file": [f"f{n}.txt" for n in range(len(texts))],
            "title": "عنوان",
            "text": texts,
            "url": None,
            "source": None,
            "published_date": None,
            "raw_sha256": "x",
            "n_chars": 0,
            "n_words": 0,
            "language": None,
            "language_score": None,
        },
        schema=clean.ARTICLE_SCHEMA,
    )


def test_quality_filters_give_reasons():
    sentence = "أعلنت الحكومة اليوم عن خطة جديدة لدعم المزارعين في المناطق الريفية خلال العام المقبل"
    texts = {
        "kept": f"{sentence}.\n{sentence} والقرى.",
        "too_short": "خبر قصير جدا.",
        "low_arabic_ratio": "The government announced a new plan to support farmers in rural areas next year. " * 3 + sentence,
        "repetitive": "\n".join([sentence + " الأولى."] + [sentence + " الثانية."] * 4),
        "empty_after_cleaning": "تابعونا على\nزر الذهاب إلى الأعلى",
        # Persian passes the Arabic-letter ratio (same script): language ID tells it apart.
        "not_arabic": "وزارت بهداشت امروز اعلام کرد که سه بیمارستان جدید در مناطق شمالی کشور افتتاح خواهد شد و "
        "سخنگوی دولت گفت که مذاکرات با طرف مقابل همچنان ادامه دارد.",
    }
    rules = clean.BoilerplateRules.from_params(section(PARAMS, "boilerplate"))
    normalised = clean.normalise_fields(_article_frame(list(texts.values())), rules).collect()
    repeated = clean.repeated_lines(clean.short_line_counts(clean.article_lines(normalised.lazy()), rules), rules).collect()
    result = clean.clean_articles(normalised, repeated, rules, section(PARAMS, "quality"))
    kept, quarantine = result.articles, result.quarantine
    assert kept["id"].to_list() == ["id0"]
    assert quarantine["reason"].to_list() == list(texts)[1:]
    assert quarantine["detail"].null_count() == 0 and (quarantine["stage"] == "clean").all()
    assert quarantine.filter(pl.col("reason") == "not_arabic")["detail"].item().startswith("identified as fa (score 0.")
    assert kept.select("language", "language_score").row(0) == ("ar", None)  # Arabic alphabet alone: no model needed


def test_a_jawi_article_is_quarantined_as_malay():
    """lid.176 calls Jawi (Malay in Arabic script) Arabic; its own letters tell it apart."""
    jawi = ("ڤوليس تله منڠکڤ دوا اورڠ للاکي يڠ دڤرچايا ترليبت دالم کس رومڤقن د ڤکن ايت سمالم، "
            "دان کدوا-دوا سوسڤيک اکن دحاضرکن د مهکمه مجيستريت ڤد هاري اثنين اين اونتوق دتودوه.")
    rules = clean.BoilerplateRules.from_params(section(PARAMS, "boilerplate"))
    normalised = clean.normalise_fields(_article_frame([jawi]), rules).collect()
    no_repeats = pl.DataFrame(schema={"drop": pl.String, "source": pl.String, "key": pl.String, "repeated": pl.Boolean})
    quarantine = clean.clean_articles(normalised, no_repeats, rules, section(PARAMS, "quality")).quarantine
    assert quarantine.select("reason", "detail").rows() == [("not_arabic", "identified as ms (by the letters only it writes)")]


def test_saudinewsnet_sample_counts_add_up_and_boilerplate_goes(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "snn").symlink_to(SAUDI_SAMPLE)
    articles, quarantine = _ingest_and_clean(raw, tmp_path)
    n_inputs = len(list(SAUDI_SAMPLE.glob("*.json")))
    assert articles.height + quarantine.height == n_inputs == 599
    assert set(articles["id"]).isdisjoint(quarantine["id"])
    metrics = json.loads((tmp_path / "clean.json").read_text())
    assert metrics["input"] == metrics["articles"] + metrics["quarantined"]
    by_reason = quarantine.filter(pl.col("stage") == "clean").group_by("reason").len()
    assert metrics["quarantine"] == dict(zip(by_reason["reason"], by_reason["len"])) and sum(metrics["quarantine"].values()) == 9
    # Every article clean judged has a language; the report counts them (the card's language mix).
    languages = json.loads((tmp_path / "clean" / "report.json").read_text())["languages"]
    assert sum(languages.values()) == metrics["articles"] + metrics["quarantined"] and languages["ar"] >= metrics["articles"]
    assert (articles["language"] == "ar").all() and (articles["language_score"].drop_nulls() > 0.5).all()
    # SPA's end-of-story marker and the outlets' SMS/share lines are gone, everywhere.
    for marker in ("// انتهى //", "Next Previous", "inShare"):
        assert not articles["text"].str.contains(marker, literal=True).any(), marker
    assert articles["title"].null_count() == 0 and (articles["n_words"] >= 15).all()


def test_clean_output_is_byte_identical_on_rerun(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "snn").symlink_to(SAUDI_SAMPLE)
    _ingest_and_clean(raw, tmp_path / "a")
    _ingest_and_clean(raw, tmp_path / "b")
    for name in ("articles.parquet", "quarantine.parquet", "removed_lines.parquet"):
        assert (tmp_path / "a" / "clean" / name).read_bytes() == (tmp_path / "b" / "clean" / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "a" / "ingest" / "articles").iterdir()) == ["part-00000.parquet"]
    assert (tmp_path / "a" / "ingest" / "articles" / "part-00000.parquet").read_bytes() == (
        tmp_path / "b" / "ingest" / "articles" / "part-00000.parquet"
    ).read_bytes()


def test_batches_give_the_tables_of_one_batch(tmp_path):
    """Clean works a batch of articles at a time; only the repeated lines are counted over
    the whole corpus. Batches of 7 articles give the tables one batch of all of them does."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "snn").symlink_to(SAUDI_SAMPLE)
    run_corpus("ingest", "--input", str(raw), "--output", str(tmp_path / "ingest"), "--metrics", str(tmp_path / "ingest.json"))
    for batch_size in (7, 1_000_000):
        clean.run(tmp_path / "ingest", tmp_path / str(batch_size), None, PARAMS | {"clean": {"batch_size": batch_size}})
    small, whole = tmp_path / "7", tmp_path / "1000000"
    for name in ("articles.parquet", "quarantine.parquet", "removed_lines.parquet"):
        assert pl.read_parquet(small / name).equals(pl.read_parquet(whole / name)), name
        assert (small / name).read_bytes() == (whole / name).read_bytes(), name
    assert (small / "report.json").read_text() == (whole / "report.json").read_text()
    # Lines repeated in 10 or more articles, so in several batches of 7, were found.
    assert pl.read_parquet(whole / "removed_lines.parquet").filter(pl.col("removed_as") == "repeated").height > 0


def test_a_file_without_a_title_line_gets_its_first_sentence_as_title(tmp_path):
    max_title = section(PARAMS, "quality")["max_title_chars"]
    words = "أعلنت الحكومة اليوم خطة جديدة لدعم المزارعين " * 10

    def sentence(length: int) -> str:
        return words[: length - 1].rstrip() + "." if words[length - 2] != " " else words[: length - 2] + "ن."

    fits, too_long = sentence(max_title), sentence(max_title + 1)
    assert (len(fits), len(too_long)) == (max_title, max_title + 1)
    rest = " وتشمل الخطة قروضا ميسرة وبرامج تدريب في المناطق الريفية." * 5
    drop = _write_drop(tmp_path / "raw" / "d", {"a.txt": fits + rest, "b.txt": too_long + rest})
    articles, _ = _ingest_and_clean(drop.parent, tmp_path)
    by_file = {row["source_file"]: row for row in articles.iter_rows(named=True)}
    assert by_file["a.txt"]["title"] == fits
    assert by_file["a.txt"]["text"] == fits + rest  # the paragraph stays whole
    # A first sentence longer than a headline may be: cut at a word boundary instead.
    title_b = by_file["b.txt"]["title"]
    assert len(title_b) <= max_title and too_long.startswith(title_b) and not title_b.endswith(".")


BODY = "أعلنت وزارة الصحة اليوم عن افتتاح ثلاثة مستشفيات جديدة في المناطق الشمالية، مؤكدة أن المشروع سيخدم أكثر من مليون مواطن في تلك المناطق خلال العام."


def _classified(texts: list[str]) -> pl.DataFrame:
    rules = clean.BoilerplateRules.from_params(section(PARAMS, "boilerplate"))
    articles = pl.LazyFrame({"id": [f"a{n}" for n in range(len(texts))], "drop": "d", "source": "s", "text": texts})
    no_repeats = pl.LazyFrame(schema={"drop": pl.String, "source": pl.String, "key": pl.String, "repeated": pl.Boolean})
    return clean.classify_lines(clean.article_lines(articles), no_repeats, rules).collect()


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("اقرأ أيضاً: الحكومة تعلن خطة جديدة للطاقة المتجددة", "read_also"),
        ("إقرأ أيضا.. ارتفاع أسعار الذهب", "read_also"),
        ("حمّل تطبيقنا على هاتفك الذكي", "app_and_follow"),
        ("تابعوا آخر الأخبار عبر قناتنا على تيليجرام", "app_and_follow"),
        ("© جميع الحقوق محفوظة لموقع الخبر 2024", "copyright"),
        ("فيسبوك | تويتر | واتساب", "social_widgets"),
        ("(أرشيفية)", "photo_credit"),
    ],
)
def test_line_rules_remove_furniture_anywhere(line, rule):
    lines = _classified([f"{BODY}\n{line}\n{BODY}"])
    assert lines["removed_as"].to_list() == [None, rule, None]


def test_line_rules_at_the_edges_only():
    head = ["الرباط - هسبريس", "كتب: محمد أحمد", "تاريخ النشر: الثلاثاء 01 مايو 2012"]
    tail = ["المصدر: وكالات", "شارك", "رابط مختصر", "الكلمات الدالة: الصحة، المستشفيات"]
    lines = _classified(["\n".join([*head, BODY, *tail]), "\n".join([BODY, *head, *tail, BODY])])
    edges, inside = lines.filter(pl.col("id") == "a0"), lines.filter(pl.col("id") == "a1")
    assert edges["removed_as"].to_list() == ["dateline", "credit", "published_date", None, "credit", "curated", "read_also", "tags"]
    # Between two paragraphs only the rules that hold anywhere (and the curated list) apply.
    assert inside["removed_as"].to_list() == [None, None, None, None, None, "curated", "read_also", None, None]


def test_bylines_signatures_and_sign_offs_at_the_edges_only():
    head = ["د. سامر العلوان", "يوسف الحربي الدمام", "بيروت: ليلى حداد", "و.م.ع / كريم الناصري"]
    tail = ["صورة تذكارية للمشاركين في الورشة", "خالد بن سعيد المنصوري", "(بنا)", "ع.ر/ س.م"]
    lines = _classified(["\n".join([*head, BODY, *tail]), "\n".join([BODY, *head, *tail, BODY])])
    edges, inside = lines.filter(pl.col("id") == "a0"), lines.filter(pl.col("id") == "a1")
    assert edges["removed_as"].to_list() == [
        "byline_name", "city_byline", "byline_name", "credit", None, "caption", "signature", "wire_signoff", "wire_signoff"
    ]
    assert inside["removed_as"].to_list() == [None] * inside.height


def test_contact_blocks_bios_and_city_bylines_at_their_edge_only():
    head = ["الرياضي الدمام", "مكة سامي الحربي"]
    tail = ["أستاذ الإعلام بجامعة الملك سعود", "للتواصل أرسل SMS إلى 88548", "تبدأ بالرمز (42) ثم مسافة ثم نص الرسالة إلى",
            "88591 - Stc", "جوال: 0555123456"]
    lines = _classified(["\n".join([*head, BODY, *tail]), "\n".join([BODY, *head, *tail, BODY])])
    edges, inside = lines.filter(pl.col("id") == "a0"), lines.filter(pl.col("id") == "a1")
    assert edges["removed_as"].to_list() == ["city_byline", "city_byline", None, "author_bio", "sms", "sms", "phone", "phone"]
    assert inside["removed_as"].to_list() == [None] * inside.height
    # A number alone is data (an ID or account list), a line starting "في" is verse, and a
    # headline of more than four words that starts with a city is no byline.
    kept = _classified(["\n".join(["في ربوع جدة", "الرياض تستضيف قمة الخليج المقبلة", BODY, "1070690258", "٤٨٠٦٠٨٠١٠٠٨٩٠٠٠"])])
    assert kept["removed_as"].to_list() == [None] * kept.height


def test_short_lines_that_only_look_like_names_stay():
    # "على" and "عمر" fold to the given names "علي" and "عمر"; bullets and verse below the
    # last paragraph are body.
    tail = ["على ضفاف النهر نمشي", "عمر مضى في الانتظار", "* ارتفاع أسعار النفط", "* تراجع البورصة"]
    lines = _classified(["\n".join(["سوريا: هدنة جديدة", BODY, *tail])])
    assert lines["removed_as"].to_list() == [None] * lines.height


def test_body_sentences_that_start_like_furniture_stay():
    sentences = [
        "المصدر الرئيسي للدخل في البلاد هو النفط الذي يمثل أكثر من ثمانين في المئة من الصادرات.",
        "شارك الآلاف في المسيرة التي انطلقت من وسط العاصمة باتجاه مقر البرلمان صباح اليوم.",
        "تابع الوزير حديثه قائلا إن الحكومة ستواصل دعم المشاريع الصغيرة في القرى والأرياف.",
        "كتب الشاعر قصيدته الأولى وهو في العاشرة من عمره، ونشرها في مجلة المدرسة.",
        "للمزيد من التفاصيل حول الخطة، عقد الوزير مؤتمرا صحفيا مطولا أجاب فيه عن أسئلة الصحفيين وشرح بنود الخطة واحدا واحدا.",
    ]
    lines = _classified(["\n".join([sentences[0], BODY, *sentences[1:4], BODY, sentences[4]])])
    assert lines["removed_as"].null_count() == lines.height


def test_removal_precision_and_recall_on_the_labelled_lines():
    """Floors on benchmarks/boilerplate_lines.jsonl (labelled by repetition, position and
    reading, not by these rules), cleaned as one small drop of outlets never seen before
    (recall 0.961 measured, 0.976 on the held-out outlets; 0.970 with repeated lines learnt
    from earlier drops)."""
    from benchmarks.boilerplate_eval import evaluate_here

    scores = evaluate_here()
    assert scores["lines"] > 4000 and scores["boilerplate"] > 200
    assert scores["precision"] >= 0.99, scores["wrongly_removed"]
    assert scores["recall"] >= 0.95, scores["missed"]
    held_out = scores["by_split"]["held-out"]
    assert held_out["boilerplate"] > 100 and held_out["precision"] >= 0.99 and held_out["recall"] >= 0.95
