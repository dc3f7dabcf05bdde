"""Write a clean (output-free) notebook from a list of cells: ``python tools/make_notebook.py SPEC.py OUT.ipynb``.

SPEC.py defines CELLS: a list of (kind, source) with kind in {"md", "code", "parameters"}.
Notebooks are authored this way so they stay diffable and never carry outputs.
"""

import runpy
import sys

import nbformat


def main() -> None:
    spec, out = sys.argv[1], sys.argv[2]
    cells = []
    for kind, src in runpy.run_path(spec)["CELLS"]:
        src = src.strip("\n")
        if kind == "md":
            cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            c = nbformat.v4.new_code_cell(src)
            if kind == "parameters":
                c.metadata["tags"] = ["parameters"]
            cells.append(c)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, out)


if __name__ == "__main__":
    main()
