"""A tiny document model written out twice: as markdown and as PDF (fpdf2), so the two
report formats can never disagree."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from fpdf import FPDF

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: covers alpha, +-, degrees


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def heading(self, text: str, level: int = 2):
        self.blocks.append(("heading", level, text))

    def text(self, text: str):
        self.blocks.append(("text", text))

    def table(self, header: list[str], rows: list[list[str]], widths: list[float] | None = None):
        self.blocks.append(("table", header, [[str(c) for c in r] for r in rows], widths))

    def image(self, path: Path, caption: str, width_mm: float = 160):
        self.blocks.append(("image", Path(path), caption, width_mm))

    def markdown(self, relative_to: Path) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                out += ["#" * block[1] + " " + block[2], ""]
            elif kind == "text":
                out += [block[1], ""]
            elif kind == "table":
                header, rows = block[1], block[2]
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "|".join("---" for _ in header) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "image":
                out += [f"![{block[2]}]({block[1].relative_to(relative_to).as_posix()})", "", f"*{block[2]}*", ""]
        return "\n".join(out)

    def pdf(self, path: Path) -> None:
        pdf = FPDF(orientation="L", format="A4")
        pdf.add_font("dejavu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        pdf.add_font("dejavu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        pdf.add_font("dejavu", "I", str(FONT_DIR / "DejaVuSans-Oblique.ttf"))
        pdf.set_auto_page_break(True, margin=12)
        pdf.add_page()
        pdf.set_font("dejavu", "B", 16)
        pdf.multi_cell(0, 9, self.title, new_x="LMARGIN", new_y="NEXT")
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                if pdf.get_y() > pdf.h - 60:
                    pdf.add_page()
                pdf.ln(3)
                pdf.set_font("dejavu", "B", 13 if block[1] <= 2 else 11)
                pdf.multi_cell(0, 7, block[2], new_x="LMARGIN", new_y="NEXT")
            elif kind == "text":
                pdf.set_font("dejavu", "", 9)
                pdf.multi_cell(0, 5, block[1].replace("`", "").replace("**", ""), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            elif kind == "table":
                pdf.set_font("dejavu", "", 8)
                with pdf.table(col_widths=block[3], line_height=4.5, text_align="LEFT", first_row_as_headings=True, repeat_headings=1) as t:
                    for r in [block[1]] + block[2]:
                        row = t.row()
                        for c in r:
                            row.cell(c.replace("`", ""))
                pdf.ln(2)
            elif kind == "image":
                if pdf.get_y() > pdf.h - 90:
                    pdf.add_page()
                pdf.image(str(block[1]), w=block[3], x=(pdf.w - block[3]) / 2)
                pdf.set_font("dejavu", "I", 8)
                pdf.multi_cell(0, 4.5, block[2], align="C", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
        pdf.output(str(path))
