"""Upstream's ``{{ .inputs.name }}`` placeholder syntax (flytekit's SQLite3Task / SQLAlchemyTask templates), one
pattern for every task type: group 1 is the input's name, group 2 an optional ``| filter``."""

import re

INPUT_PLACEHOLDER = re.compile(r"\{\{\s*\.?\s*inputs\s*\.\s*(\w+)\s*(?:\|\s*(\w+)\s*)?\}\}", re.IGNORECASE)
