"""talentwatch: monitor the China-US race for AI talent across news feeds."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/talentwatch/talentwatch"
