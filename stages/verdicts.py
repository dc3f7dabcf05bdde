"""DVC stage `verdicts`: every claim's verdict across the paper reports in one table (reasonlab.verdicts).

Reads the verdict tables under ``--reports`` (a report that has not been built is skipped and listed; a missing
table in a built report is an error) and writes ``<out>/verdicts.csv`` and ``<out>/verdicts.md`` (a per-paper
count, then every claim), the folder replaced atomically.
"""

import argparse
from pathlib import Path

from reasonlab.io import fresh_tmp_dir, replace_dir
from reasonlab.verdicts import collect, summary, to_csv, to_markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reports", required=True, help="the reports folder (reports/<name>/tables/*.csv)")
    ap.add_argument("--out", required=True, help="the output folder (verdicts.csv, verdicts.md)")
    a = ap.parse_args()
    out = Path(a.out)
    table, skipped = collect(a.reports, link_from=out)
    tmp = fresh_tmp_dir(out)
    (tmp / "verdicts.csv").write_text(to_csv(table))
    (tmp / "verdicts.md").write_text(to_markdown(table, skipped))
    replace_dir(tmp, out)
    print(summary(table).to_string(index=False))
    if skipped:
        print("skipped (not built): " + ", ".join(skipped))
    print(f"wrote {out / 'verdicts.csv'}, {out / 'verdicts.md'} ({len(table)} claims)")


if __name__ == "__main__":
    main()
