"""A tiny document model written out twice: as markdown and as PDF (fpdf2), so the two
report formats can never disagree.

Blocks: headings (level 1 starts a new PDF page), paragraphs, tables (each with a key so tests
can find it, a kind per row that shades paper rows and missing rows in the PDF, and a note
printed under it) and images (PNG files, referenced relative to the markdown file).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image as PILImage

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: covers alpha, +-, degrees
SHADES = {"paper": (232, 238, 248), "missing": (255, 246, 219), "baseline": (240, 240, 240)}  # row kind -> PDF fill
NUMBER = re.compile(r"^-?\d+(\.\d+)?( ± \d+(\.\d+)?)?%?$")
EMPTY = {"", "-", "not run", "n/a"}


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    key: str = ""
    widths: list[float] | None = None  # relative column widths
    kinds: list[str] = field(default_factory=list)  # per row: paper | ours | baseline | missing
    note: str = ""
    groups: list[tuple[str, int]] | None = None  # PDF only: a first heading row of (label, columns spanned)
    short: list[str] | None = None  # PDF only: the header under `groups`
    sources: dict | None = None  # not shown: per row index, the files its numbers were read from

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]

    def row(self, first_cell: str) -> list[str]:
        """The row whose first cell is `first_cell` (KeyError if none)."""
        for r in self.rows:
            if r[0] == first_cell:
                return r
        raise KeyError(first_cell)

    def numeric_columns(self) -> list[bool]:
        cols = list(zip(*self.rows)) if self.rows else [()] * len(self.header)
        return [any(NUMBER.match(c) for c in col) and all(NUMBER.match(c) or c in EMPTY for c in col) for col in cols]


@dataclass
class Image:
    path: Path
    caption: str
    width_mm: float = 200


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def heading(self, text: str, level: int = 2):
        self.blocks.append(Heading(text, level))

    def text(self, text: str):
        self.blocks.append(Text(text))

    def table(self, header: list[str], rows: list[list], key: str = "", widths=None, kinds=None, note: str = "",
              groups=None, short=None) -> Table:
        rows = [[str(c) for c in r] for r in rows]
        table = Table(header, rows, key, widths, list(kinds or ["ours"] * len(rows)), note, groups, short)
        self.blocks.append(table)
        return table

    def image(self, path: Path, caption: str, width_mm: float = 200):
        self.blocks.append(Image(Path(path), caption, width_mm))

    def tables(self) -> dict[str, Table]:
        return {b.key: b for b in self.blocks if isinstance(b, Table) and b.key}

    def markdown(self, relative_to: Path) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            if isinstance(block, Heading):
                out += ["#" * (block.level + 1) + " " + block.text, ""]
            elif isinstance(block, Text):
                out += [block.text, ""]
            elif isinstance(block, Table):
                out.append("| " + " | ".join(block.header) + " |")
                out.append("|" + "|".join("---:" if num else "---" for num in block.numeric_columns()) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in block.rows]
                out += ["", *([f"<sub>{block.note}</sub>", ""] if block.note else [])]
            elif isinstance(block, Image):
                out += [f"![{block.caption}]({block.path.relative_to(relative_to).as_posix()})", "", f"*{block.caption}*", ""]
        return "\n".join(out)

    def pdf(self, path: Path) -> None:
        pdf = _PDF(orientation="L", format="A4")
        for style, name in (("", "DejaVuSans"), ("B", "DejaVuSans-Bold"), ("I", "DejaVuSans-Oblique")):
            pdf.add_font("dejavu", style, str(FONT_DIR / f"{name}.ttf"))
        pdf.set_auto_page_break(True, margin=14)
        pdf.add_page()
        pdf.set_font("dejavu", "B", 16)
        pdf.multi_cell(0, 9, self.title, new_x="LMARGIN", new_y="NEXT")
        for i, block in enumerate(self.blocks):
            if isinstance(block, Heading):  # start a page rather than leave a heading alone at the bottom
                following = next((b for b in self.blocks[i + 1:] if not isinstance(b, Heading)), None)
                need = 12 + (min(_height(pdf, following), 90) if following is not None else 0)
                if pdf.get_y() + need > pdf.h - pdf.b_margin and pdf.get_y() > 40:
                    pdf.add_page()
            {Heading: _heading, Text: _text, Table: _table, Image: _image}[type(block)](pdf, block)
        pdf.output(str(path))


class _PDF(FPDF):
    def footer(self):
        self.set_y(-10)
        self.set_font("dejavu", "I", 7)
        self.cell(0, 5, f"page {self.page_no()}", align="C")


def _plain(text: str) -> str:
    return text.replace("`", "").replace("**", "")


def _heading(pdf: FPDF, block: Heading) -> None:
    if block.level == 1 and pdf.get_y() > 40:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("dejavu", "B", {1: 15, 2: 12}.get(block.level, 10.5))
    pdf.multi_cell(0, 7, block.text, new_x="LMARGIN", new_y="NEXT")


def _text(pdf: FPDF, block: Text) -> None:
    pdf.set_font("dejavu", "", 9)
    pdf.multi_cell(0, 4.6, _plain(block.text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)


def _height(pdf: FPDF, block) -> float:
    """A rough height (mm) of a block, to keep a heading on the page of what follows it."""
    if isinstance(block, Table):
        return 6 * (len(block.rows) + 1 + bool(block.groups)) + 4 * bool(block.note)
    if isinstance(block, Image):
        with PILImage.open(block.path) as im:
            return min(block.width_mm, pdf.epw) * im.height / im.width + 8
    if isinstance(block, Text):
        return 5 * (1 + len(block.text) // 180)
    return 10


def _table(pdf: FPDF, block: Table) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.set_font("dejavu", "", 7.5)
    numeric = block.numeric_columns()
    align = ["RIGHT" if n else "LEFT" for n in numeric]
    heading = FontFace(emphasis="BOLD", fill_color=(210, 215, 225))
    with pdf.table(col_widths=block.widths, line_height=3.9, text_align=align, headings_style=heading, repeat_headings=1,
                   padding=(0.8, 1.2), num_heading_rows=2 if block.groups else 1) as t:
        if block.groups:
            row = t.row()
            for label, span in block.groups:
                row.cell(label, colspan=span, align="CENTER")
        row = t.row()
        for c in block.short or block.header:
            row.cell(c)
        for cells, kind in zip(block.rows, block.kinds):
            style = FontFace(fill_color=SHADES[kind]) if kind in SHADES else None
            row = t.row(style=style)
            for c in cells:
                row.cell(_plain(c))
    if block.note:
        pdf.set_font("dejavu", "I", 7)
        pdf.multi_cell(0, 3.6, _plain(block.note), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2.5)


def _image(pdf: FPDF, block: Image) -> None:
    with PILImage.open(block.path) as im:
        aspect = im.height / im.width
    width = min(block.width_mm, pdf.epw)
    height = width * aspect
    room = pdf.h - pdf.b_margin - 12  # keep the caption on the image's page
    if height > room - pdf.t_margin:  # taller than a page: shrink to fit one
        height = room - pdf.t_margin
        width = height / aspect
    if pdf.get_y() + height > room:
        pdf.add_page()
    pdf.image(str(block.path), w=width, h=height, x=(pdf.w - width) / 2)
    pdf.set_font("dejavu", "I", 8)
    pdf.multi_cell(0, 4.2, _plain(block.caption), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
