"""Writes the messy-CSV corpus next to this file: `python tests/data/messy/make_corpus.py`.

Each file is one way a new user's own CSV differs from the tidy iris file; expected.json says what
the pipeline must do with it: train (with the label type the predictions come back in), or fail
with an exact sentence. The files are committed; this script documents how they were made.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from sklearn.datasets import load_iris

HERE = Path(__file__).resolve().parent
IRIS = load_iris()
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def rows(label=lambda t: IRIS.target_names[t], number=lambda v: f"{v:g}") -> list[list[str]]:
    return [[*(number(v) for v in x), label(t)] for x, t in zip(IRIS.data, IRIS.target, strict=True)]


def write(name: str, header: list[str], body: list[list[str]], delimiter: str = ",", **options) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=options.get("newline", "\n"))
    if header:
        writer.writerow(header)
    writer.writerows(body)
    text = buffer.getvalue()
    path = HERE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(options.get("prefix", b"") + text.encode("utf-8"))


def quoted_everything(name: str, header: list[str], body: list[list[str]]) -> None:
    """As R's write.csv writes: every header name and every string quoted, numbers bare."""

    def cell(value: str) -> str:
        try:
            float(value)
        except ValueError:
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [",".join(f'"{h}"' for h in header), *(",".join(cell(v) for v in row) for row in body)]
    (HERE / name).write_text("\n".join(lines) + "\n")


def categorical() -> list[list[str]]:
    """Two categorical features and one number decide the label; one category holds a comma."""
    rng = random.Random(16)
    out = []
    for _ in range(400):
        colour = rng.choice(["red", "green", "blue", "dark, blue"])
        shape = rng.choice(["round", "square"])
        size = rng.uniform(0, 10)
        big = size > 5
        keep = (colour in ("red", "dark, blue")) == big or (shape == "square" and colour == "green")
        label = "keep" if keep else "drop"
        out.append([colour, f"{size:.2f}", shape, label])
    return out


def main() -> None:
    dotted = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"]
    quoted_everything("r_dotted_headers.csv", dotted, rows())
    spaced = [" sepal length ", "sepal width ", " petal length", " petal width ", " label "]
    write("spaces_around_headers.csv", spaced, rows())
    write("categorical_features.csv", ["colour", "size", "shape", "label"], categorical())
    write("semicolon_decimal_comma.csv", [*NAMES, "species"], rows(number=lambda v: f"{v:g}".replace(".", ",")), ";")
    write("tab_delimited.tsv", [*NAMES, "label"], rows(), "\t")
    write("quoted_label_with_comma.csv", [*NAMES, "label"], rows(label=lambda t: f"Iris, {IRIS.target_names[t]}"))
    missing = rows()
    for index, row in enumerate(missing):
        if index % 5 == 0:
            row[index % 4] = ["", "NA", "?", "nan"][index % 4]
    missing[3][4] = ""  # one row without a label: bad, and well under the allowed 5 %
    write("missing_values.csv", [*NAMES, "label"], missing)
    write("bom_crlf.csv", [*NAMES, "label"], rows(), newline="\r\n", prefix=b"\xef\xbb\xbf")
    numeric = [[str(t), *(f"{v:g}" for v in x)] for x, t in zip(IRIS.data, IRIS.target, strict=True)]
    write("numeric_labels.csv", ["class", *NAMES], numeric)
    write("no_header.csv", [], rows())
    write("label_misspelt.csv", [*NAMES, "Label"], rows())
    write("mixed_headers/part-1.csv", [*NAMES, "label"], rows()[:75])
    write("mixed_headers/part-2.csv", ["sepal_length", "sepal_width", "petal_len", "petal_width", "label"], rows()[75:])
    write("too_many_bad_rows.csv", [*NAMES, "label"], rows() + [["5.0", "oops", "1.4", "0.2", "setosa"]] * 30)


if __name__ == "__main__":
    main()
