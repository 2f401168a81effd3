"""Synthetic data in the shape of the UCI Abalone set, for the Pipelines walkthrough.

The blog downloads ``abalone.csv`` from a public S3 bucket; sluice needs no network, so this writes a
stand-in with the same layout: a headerless CSV of sex (``M``, ``F`` or ``I`` for infant), length,
diameter, height, whole weight, shucked weight, viscera weight, shell weight, and the number of rings.
The units are the UCI set's (lengths in mm/200, weights in grams/200).

Why it looks like the real thing: each animal gets an age (rings) first, drawn per sex from a skewed
distribution (infants young, females slightly older than males), then grows along a von Bertalanffy curve
towards an individual asymptotic length. The other measurements follow from the length with the real set's
proportions, and the shell keeps thickening with age while the meat fraction falls. The noise is set so
that rings are about as predictable as in the real data: a well-fitted gradient-boosted model reaches a
mean squared error of about 4.6 on a variance of about 10.

    python make_data.py OUT.csv [--rows N] [--seed S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

COLUMNS = ("sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
           "shell_weight", "rings")
DEFAULT_ROWS = 4177  # the UCI set's size
DEFAULT_SEED = 7


def make_rows(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> list[tuple]:
    """``rows`` abalone as tuples in :data:`COLUMNS` order; the same seed always gives the same rows."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}.")
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["M", "F", "I"]), size=rows, p=[0.366, 0.313, 0.321])
    infant = sex == "I"
    median_age = np.where(infant, 7.8, np.where(sex == "F", 10.8, 10.4))
    rings = np.clip(np.rint(np.exp(rng.normal(np.log(median_age), np.where(infant, 0.27, 0.29)))), 1, 29)

    # Growth towards an individual asymptote: length saturates with age, which makes old animals hard to age.
    asymptote = np.where(sex == "F", 0.70, 0.68) * np.exp(rng.normal(0, 0.11, rows))
    length = asymptote * (1 - np.exp(-0.13 * (rings + 0.5))) * np.exp(rng.normal(0, 0.09, rows))
    length = np.clip(length, 0.075, 0.815)
    diameter = length * rng.normal(0.785, 0.025, rows)
    height = np.clip(length * rng.normal(0.265, 0.03, rows), 0.01, 0.5)
    whole = np.clip(27.5 * length * diameter * height * np.exp(rng.normal(0, 0.09, rows)), 0.002, 2.8)
    shell = whole * np.clip(0.22 + 0.006 * rings + rng.normal(0, 0.045, rows), 0.12, 0.5)
    shucked = whole * np.clip(0.49 - 0.006 * rings + rng.normal(0, 0.05, rows), 0.2, 0.65)
    viscera = whole * np.clip(rng.normal(0.215, 0.02, rows), 0.1, 0.35)

    measures = np.round(np.column_stack([length, diameter, height, whole, shucked, viscera, shell]), 4)
    return [(s, *map(float, m), int(r)) for s, m, r in zip(sex, measures, rings, strict=True)]


def write_csv(path: str | Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """Write the headerless CSV the blog's ``preprocessing.py`` reads; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) for row in make_rows(rows, seed))
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the CSV file to write (e.g. data/abalone-dataset.csv)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"how many rows (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, not {args.rows}")
    print(f"wrote {args.rows} rows to {write_csv(args.out, args.rows, args.seed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
