"""Report stage: reports/report.md and reports/report.pdf (figures in reports/figures/), the
papers' numbers beside what this harness measured (pipeline.reporting).

    python -m pipeline.report
"""
from pipeline.config.params import load_params
from pipeline.core.errors import cli
from pipeline.core.paths import REPORTS
from pipeline.reporting.build import write_report


@cli
def main():
    write_report(load_params())
    print(f"report written to {REPORTS / 'report.md'} and {REPORTS / 'report.pdf'}")


if __name__ == "__main__":
    main()
