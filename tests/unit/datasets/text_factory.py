"""Fake text corpora built in tmp_path: AG News CSVs and an aclImdb tar.gz, as users get them.

The texts are drawn from per-class word lists plus shared filler words, so a bag-of-words model
can learn them but not perfectly; the files carry what the real ones carry: quoted fields
with commas, AG News's literal backslashes (``dwindling\\band``), an optional byte-order mark.
"""

from __future__ import annotations

import csv
import io
import random
import tarfile
from pathlib import Path

AG_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
_TOPIC = {
    1: "minister election troops iraq president talks government peace rebels un",
    2: "game season coach team win match league cup players score",
    3: "stocks shares profit oil prices company quarter market deal bank",
    4: "software internet microsoft space nasa computer users web google study",
}
_FILLER = "the a of to in on for with new said after as by at from its reuters ap says".split()


def _sentence(rng: random.Random, label: int, words: int) -> str:
    topic = _TOPIC[label].split()
    other = _TOPIC[rng.choice([k for k in _TOPIC if k != label])].split()
    out = [rng.choice(topic) if rng.random() < 0.35 else
           rng.choice(other) if rng.random() < 0.1 else rng.choice(_FILLER) for _ in range(words)]
    return " ".join(out)


def ag_news_rows(n_per_class: int, *, seed: int = 0) -> list[tuple[int, str, str]]:
    """Return shuffled ``(label 1..4, title, description)`` rows."""
    rng = random.Random(seed)
    rows = []
    for label in _TOPIC:
        for i in range(n_per_class):
            title = _sentence(rng, label, 6).capitalize()
            desc = f"{_sentence(rng, label, 12)}, {_sentence(rng, label, 8)}."
            if i % 7 == 0:
                desc = desc.replace(" ", "\\", 1)  # AG News's literal backslashes
            if i % 11 == 0:
                title += ' "quoted"'
            rows.append((label, title, desc))
    rng.shuffle(rows)
    return rows


def write_ag_news_csv(path: Path, n_per_class: int = 50, *, header: bool = True,
                      bom: bool = False, seed: int = 0) -> Path:
    """Write an AG News CSV (``label,title,description``, labels 1..4, all fields quoted)."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if header:
        buf.write("label,title,description\n")
    for label, title, desc in ag_news_rows(n_per_class, seed=seed):
        writer.writerow([label, title, desc])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8"))
    return path


def write_aclimdb_tar(path: Path, n_per_class: int = 20, *, seed: int = 0) -> Path:
    """Write ``aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt`` reviews into a tar.gz.

    Also the files the real archive has beside the reviews (``imdb.vocab``, ``urls_pos.txt``,
    ``unsup/``) that a reader must ignore.
    """
    rng = random.Random(seed)
    good = "great wonderful loved brilliant superb moving best enjoyed".split()
    bad = "awful boring worst waste terrible dull poor hated".split()
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, text: str) -> None:
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("aclImdb/imdb.vocab", "the\nand\n")
        for split in ("train", "test"):
            add(f"aclImdb/{split}/urls_pos.txt", "http://example.invalid/\n")
            for sentiment, words in (("pos", good), ("neg", bad)):
                for i in range(n_per_class):
                    body = " ".join(rng.choice(words) if rng.random() < 0.3 else
                                    rng.choice(_FILLER) for _ in range(40))
                    add(f"aclImdb/{split}/{sentiment}/{i}_{rng.randint(1, 10)}.txt",
                        f"This film.<br /><br />{body}")
            add(f"aclImdb/{split}/unsup/0_0.txt" if split == "train" else
                f"aclImdb/{split}/labeledBow.feat", "ignored")
    return path
