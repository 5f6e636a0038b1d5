"""The kinds of dependency files a bundle may hold, and the file that selects each (read by detection, export and the
spec alike, so none of them imports another for it)."""

KINDS = ("requirements", "poetry", "pipenv", "none")
# The file that selects each kind (for 'poetry', the pyproject.toml beside it is read too).
FILES = {"requirements": "requirements.txt", "poetry": "poetry.lock", "pipenv": "Pipfile.lock"}
