"""Download stage: every dataset of params.yaml `data.sources` under data/raw/.

    python -m pipeline.download

`synthetic` renders the built-in data; a URL or local archive is fetched, checked and unpacked;
an unpacked folder is read in place (pipeline.sources.download). data/raw/sources.json records
where each came from.
"""
from pipeline.config.params import load_params
from pipeline.core.errors import cli
from pipeline.sources.download import download


@cli
def main():
    for name, record in download(load_params().data).items():
        print(f"{name}: {record['source']} -> {record['path']}")


if __name__ == "__main__":
    main()
